"""Where the assistant keeps its files: the one resolver of runtime, state, cache and data folders.

Each kind of folder, in order:

1. the folder systemd made for the unit (``RuntimeDirectory=``, ``StateDirectory=``,
   ``CacheDirectory=`` set ``$RUNTIME_DIRECTORY``, ``$STATE_DIRECTORY``, ``$CACHE_DIRECTORY``;
   the first of a colon-separated list), used as it is;
2. else the user's folder by the XDG base-directory rules (``platformdirs``: ``$XDG_STATE_HOME``
   or ``~/.local/state``, ``$XDG_CACHE_HOME`` or ``~/.cache``, ``$XDG_DATA_HOME`` or
   ``~/.local/share``, ``$XDG_RUNTIME_DIR``), in an ``assistant`` subfolder;
3. runtime only: ``/tmp/assistant-<uid>`` when there is no ``$XDG_RUNTIME_DIR`` (a login-less
   service user has no ``/run/user/<uid>``).

Data that the units keep in ``StateDirectory=`` (built avatars) use :func:`data_dir`, which takes
``$STATE_DIRECTORY`` under systemd. The folders each service uses (the voice's audio cache, the
renderer's landmark cache and built avatars, the stores) are named at the end of this module, so
every lookup lives here and a configured path always wins. Secrets (mail passwords, the status
page's token) are files named in the config: :func:`credential_path` finds a relative name in
``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``). Files the code ships (model weights, the sample
knowledge, page templates) are package data: :func:`package_file` finds them with
``importlib.resources`` wherever the package is installed (a source checkout or a wheel), never by a
path relative to the source tree. Nothing here creates a folder: the caller does, with the
permissions it needs.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Mapping

import platformdirs

APP = "assistant"

#: Where the systemd units keep state and cache (``StateDirectory=``, ``CacheDirectory=`` under
#: ``assistant/``): what ``assistant forget``, run from a shell outside the unit, also looks in.
SYSTEMD_STATE = Path("/var/lib/assistant")
SYSTEMD_CACHE = Path("/var/cache/assistant")


def _systemd(variable: str) -> Path | None:
    value = os.environ.get(variable, "")
    return Path(value.split(":")[0]) if value else None


def runtime_dir() -> Path:
    """Sockets and locks: ``$RUNTIME_DIRECTORY``, else ``$XDG_RUNTIME_DIR/assistant``, else ``/tmp/assistant-<uid>``."""
    if (path := _systemd("RUNTIME_DIRECTORY")) is not None:
        return path
    if os.environ.get("XDG_RUNTIME_DIR"):
        return platformdirs.user_runtime_path(APP)
    return Path(f"/tmp/assistant-{os.getuid()}")


def state_dir() -> Path:
    """Stores that must survive a restart: ``$STATE_DIRECTORY``, else ``$XDG_STATE_HOME/assistant``."""
    return _systemd("STATE_DIRECTORY") or platformdirs.user_state_path(APP)


def cache_dir() -> Path:
    """What can be remade (audio, landmarks): ``$CACHE_DIRECTORY``, else ``$XDG_CACHE_HOME/assistant``."""
    return _systemd("CACHE_DIRECTORY") or platformdirs.user_cache_path(APP)


def data_dir() -> Path:
    """Things the kiosk builds and keeps (avatars): ``$STATE_DIRECTORY``, else ``$XDG_DATA_HOME/assistant``."""
    return _systemd("STATE_DIRECTORY") or platformdirs.user_data_path(APP)


def _configured(path: str) -> Path | None:
    return Path(path).expanduser() if path else None


def under_state(configured: str, name: str) -> Path:
    """A store file: ``configured``, else ``name`` in :func:`state_dir` (``brain.sqlite``, ``email.sqlite``)."""
    return _configured(configured) or state_dir() / name


def voice_cache_dir(configured: str = "") -> Path:
    """``voice.cache.directory``, else the voice unit's ``$CACHE_DIRECTORY``, else ``$XDG_CACHE_HOME/assistant/voice``."""
    return _configured(configured) or _systemd("CACHE_DIRECTORY") or cache_dir() / "voice"


def avatar_cache_dir(configured: str = "") -> Path:
    """``renderer.cache_dir`` (landmarks per portrait), else :func:`cache_dir` ``/avatars``."""
    return _configured(configured) or cache_dir() / "avatars"


def avatars_dir(configured: str = "") -> Path:
    """``renderer.neural.avatars_dir`` (built avatars), else :func:`data_dir` ``/avatars``."""
    return _configured(configured) or data_dir() / "avatars"


def credential_path(name: str, environ: Mapping[str, str] | None = None) -> Path:
    """A secret's file: an absolute path as is; a relative name inside ``$CREDENTIALS_DIRECTORY`` when systemd set it."""
    environ = os.environ if environ is None else environ
    path = Path(name)
    if not path.is_absolute() and environ.get("CREDENTIALS_DIRECTORY"):
        path = Path(environ["CREDENTIALS_DIRECTORY"]) / path
    return path


def package_file(package: str, *parts: str) -> Path:
    """A file or folder that ``package`` ships as package data, e.g. ``package_file("models.mtcnn", "weights")``.

    Found with ``importlib.resources`` (imports ``package`` itself: the weight folders' packages are
    docstring-only), so it is where the installed package is: the source tree, or site-packages after a
    wheel install. A package installed as a zip has no file path to hand to onnxruntime: that is an error
    saying so. The file is not checked to exist (the caller says which setting or build provides it).
    """
    target = resources.files(package).joinpath(*parts)
    if not isinstance(target, Path):
        raise FileNotFoundError(f"{package} is not installed as files on disk (zipped?): cannot hand {'/'.join(parts)} to a loader")
    return target
