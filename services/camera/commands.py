"""The camera's entry functions for the CLI (listed in ``assistant.entrypoints``): enrol from photos, forget a face.

They work on the gallery folder on disk, with or without the service running (a running camera is
told over the bus by the CLI itself).
"""

from __future__ import annotations

from pathlib import Path

from assistant.config import Config
from assistant.names import name_key


def enroll(config: Config, name: str, photos: list[str], gallery: str | None = None) -> tuple[int, list[str]]:
    """Enrol ``name`` from photo files into ``gallery`` (default ``camera.gallery_dir``).

    Returns (faces added, one line per photo skipped); ``ValueError`` when the name or the face
    models are unusable.
    """
    from .recognition import RecognitionError, enroll_photos

    try:
        return enroll_photos(gallery or config.camera.gallery_dir, name, photos)
    except RecognitionError as exc:
        raise ValueError(str(exc)) from None


def forget(config: Config, name: str) -> list[str]:
    """Delete ``name``'s enrolled face files (any spelling of the name); one line per file removed."""
    key = name_key(name)
    done = []
    gallery = Path(config.camera.gallery_dir)
    if key and gallery.is_dir():
        for path in sorted(gallery.glob("*.npz")):
            if name_key(path.stem) == key:
                path.unlink()
                done.append(f"face {path}")
    return done
