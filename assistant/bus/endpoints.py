"""Where the broker listens: ipc sockets in the runtime directory, or loopback tcp ports."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from assistant.config import BusSettings


def runtime_dir(settings: BusSettings) -> Path:
    """The directory for ipc sockets: configured, systemd's ``RuntimeDirectory``, XDG, or /tmp."""
    if settings.runtime_dir:
        return Path(settings.runtime_dir)
    if os.environ.get("RUNTIME_DIRECTORY"):
        return Path(os.environ["RUNTIME_DIRECTORY"].split(":")[0])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "assistant"
    return Path(f"/tmp/assistant-{os.getuid()}")


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
