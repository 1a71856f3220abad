"""Where the broker listens: ipc sockets in the runtime directory, or loopback tcp ports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from assistant import paths
from assistant.config import BusSettings


class BusError(RuntimeError):
    """The broker cannot be reached, or this process cannot join the bus (keys, runtime directory)."""


def runtime_dir(settings: BusSettings) -> Path:
    """The directory for ipc sockets: configured, else :func:`assistant.paths.runtime_dir` (systemd, XDG, /tmp)."""
    return Path(settings.runtime_dir) if settings.runtime_dir else paths.runtime_dir()


@dataclass(frozen=True)
class Endpoints:
    """The broker's two addresses."""

    publish: str
    """Publishers connect here (the broker's XSUB)."""
    subscribe: str
    """Subscribers connect here (the broker's XPUB)."""

    @classmethod
    def from_settings(cls, settings: BusSettings) -> "Endpoints":
        if settings.transport == "tcp":
            return cls(f"tcp://{settings.host}:{settings.pub_port}", f"tcp://{settings.host}:{settings.sub_port}")
        base = runtime_dir(settings)
        return cls(f"ipc://{base / 'bus-pub.sock'}", f"ipc://{base / 'bus-sub.sock'}")

    def ipc_paths(self) -> list[Path]:
        return [Path(e[len("ipc://"):]) for e in (self.publish, self.subscribe) if e.startswith("ipc://")]


class RuntimeDirError(BusError):
    """The runtime directory belongs to someone else or is open to everyone."""


def ensure_private_dir(path: Path, mode: int = 0o750) -> Path:
    """Create ``path`` (and parents) with ``mode``, or check that an existing one is safe to use.

    Safe: a real directory (not a link), owned by this user, not writable by others. Anything else
    (``/tmp/assistant-<uid>`` made first by another user, a world-writable folder) is refused,
    since whoever owns it could read the keys or replace the sockets.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, mode=mode)
    except FileExistsError:
        pass
    st = os.lstat(path)
    import stat as _stat

    if not _stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"{path} is not a directory (a link or a file); remove it or set bus.runtime_dir")
    if st.st_uid != os.getuid():
        raise RuntimeDirError(f"{path} belongs to uid {st.st_uid}, not to this user (uid {os.getuid()}); "
                              "someone else may have made it: remove it or set bus.runtime_dir")
    if st.st_mode & 0o002:
        raise RuntimeDirError(f"{path} is writable by everyone (mode {st.st_mode & 0o777:o}); chmod o-w it or set bus.runtime_dir")
    return path
