"""Opening a service's SQLite file: faults of the moment are retried, a damaged file is moved aside.

- A full disk, a locked database, a read-only or failing file system are *runtime faults*
  (``StoreFault``): nothing about the configuration is wrong, and the same setting works once space
  is freed or the lock is gone. The service reports ``degraded`` and tries again; it does not exit
  with the config-error code (which systemd would not restart).
- A file that is not a database, or fails SQLite's ``quick_check``, is *damaged*: it is renamed to
  ``NAME.damaged-<UTC time>`` (with its ``-wal`` and ``-shm``), one error line says where it went,
  and a fresh store is made. Nothing is deleted: the old file can still be examined or salvaged.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time
from pathlib import Path

log = logging.getLogger(__name__)

_FAULTS = {"SQLITE_FULL": "the disk is full", "SQLITE_BUSY": "the database is locked", "SQLITE_LOCKED": "the database is locked",
           "SQLITE_READONLY": "the file system is read-only", "SQLITE_CANTOPEN": "the file cannot be opened"}
_DAMAGED = ("SQLITE_NOTADB", "SQLITE_CORRUPT")
_OS_FAULTS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up", errno.EROFS: "the file system is read-only",
              errno.EIO: "the disk reports an I/O error"}


class StoreFault(RuntimeError):
    """The store cannot be used right now (disk full, locked, I/O error); worth retrying."""


def classify(exc: BaseException) -> str | None:
    """``"fault"`` (retry), ``"damaged"`` (move aside) or ``None`` (anything else)."""
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        if name.startswith(_DAMAGED) or "not a database" in str(exc) or "malformed" in str(exc):
            return "damaged"
        if name in _FAULTS or name.startswith("SQLITE_IOERR") or "disk is full" in str(exc) or "locked" in str(exc):
            return "fault"
        return None
    if isinstance(exc, OSError) and exc.errno in _OS_FAULTS:
        return "fault"
    return None


def describe(exc: BaseException) -> str:
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return _FAULTS.get(name, "the disk reports an I/O error" if name.startswith("SQLITE_IOERR") else str(exc))
    if isinstance(exc, OSError):
        return _OS_FAULTS.get(exc.errno, str(exc)) if exc.errno is not None else str(exc)
    return str(exc)


def quarantine(path: Path, why: str) -> Path:
    """Move a damaged database (and its WAL and shared-memory files) aside; returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            os.replace(src, Path(str(aside) + suffix))
    log.error("%s is damaged (%s); moved aside to %s, starting with an empty store (nothing deleted: "
              "examine or salvage it with sqlite3 .recover)", path, why, aside)
    return aside


def open_sqlite(path: Path | str, what: str, setup) -> sqlite3.Connection:
    """Open ``path`` and run ``setup(db)`` (pragmas, schema); damaged files are quarantined.

    Raises ``StoreFault`` for runtime faults (the caller retries) and lets other errors through.
    """
    path = Path(path)
    for attempt in (1, 2):
        db = None
        try:
            if str(path) != ":memory:":
                path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5)
            if str(path) != ":memory:" and path.exists() and path.stat().st_size:
                row = db.execute("PRAGMA quick_check").fetchone()
                if row is None or row[0] != "ok":
                    raise sqlite3.DatabaseError(f"quick_check: {row[0] if row else 'no answer'} (database disk image is malformed)")
            setup(db)
            return db
        except (sqlite3.Error, OSError) as exc:
            if db is not None:
                db.close()
            kind = classify(exc)
            if kind == "damaged" and attempt == 1:
                quarantine(path, str(exc))
                continue
            if kind == "fault":
                raise StoreFault(f"{what} {path}: {describe(exc)}") from exc
            raise
    raise AssertionError("unreachable")
