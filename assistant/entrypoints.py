"""How the assistant floor reaches the services and the model builders: entry functions named by string.

The code's floors run hardware -> assistant -> services -> models -> bench: a floor imports from the
floors before it, never from one after it, and no service imports another (``tests/test_layers.py``
checks every import). The CLI and ``assistant forget`` live on the assistant floor, yet a few
commands need what only a service or a builder knows: how the camera turns a photo into a face
descriptor, where the brain keeps mail, where the voice caches audio, how an avatar is built. They
reach it the way the supervisor starts a service (``python -m services.NAME``, whose ``main`` is
the service's entry point): through a documented entry function, named below as
``"module:function"`` and imported only when the command runs, so ``assistant status`` never loads
a service's engines and the assistant package has no import of a floor above it.

Each entry function lives in its package's ``commands`` module (``services/camera/commands.py``,
...): that module is the package's public face to the CLI, and its internals stay free to change.
Entry functions take the config and plain values, return plain values, and raise ``ValueError``
for unusable input (the CLI prints it and exits 2).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

#: Entry function of each CLI-facing command, by name.
ENTRY_POINTS: dict[str, str] = {
    # ``assistant enroll NAME PHOTO...``: enroll(config, name, photos, gallery) -> (faces added, skipped lines).
    "enroll": "services.camera.commands:enroll",
    # ``assistant avatar build``: build(config, args) -> exit status (prints the avatar's folder).
    "avatar-build": "models.neural.commands:build",
    # ``assistant forget NAME``: each forget(config, name) -> one line per thing removed.
    "forget-face": "services.camera.commands:forget",
    "forget-mail": "services.brain.commands:forget",
    "forget-speech": "services.voice.commands:forget",
}

#: What ``assistant forget`` runs, in order: the face, the mail, the cached speech.
FORGET = ("forget-face", "forget-mail", "forget-speech")


def entry(name: str) -> Callable[..., Any]:
    """The entry function called ``name`` (imports its module now)."""
    try:
        target = ENTRY_POINTS[name]
    except KeyError:
        raise ValueError(f"no entry point {name!r}; known: {', '.join(sorted(ENTRY_POINTS))}") from None
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)
