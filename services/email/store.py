"""The email service's memory across crashes: which mails were delivered or handled, and the outbox.

One SQLite file in WAL mode with ``synchronous=FULL``: a row is on disk before the service acts
on it, so a SIGKILL at any point either redelivers a mail (same ``mail_id``) or finds it handled.
Safe to share between the service's threads (one connection behind a lock; writes are tiny).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from assistant import paths
from assistant.clock import SteadyClock
from assistant.storefile import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mails (
    mail_id     TEXT PRIMARY KEY,
    message_id  TEXT NOT NULL,
    digest      TEXT NOT NULL,
    sender      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('delivered', 'handled')),
    deliveries  INTEGER NOT NULL DEFAULT 0,
    first_seen  REAL NOT NULL,
    handled_at  REAL
);
CREATE INDEX IF NOT EXISTS mails_by_message_id ON mails (message_id);
CREATE TABLE IF NOT EXISTS outbox (
    send_id      TEXT PRIMARY KEY,
    recipients   TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    in_reply_to  TEXT NOT NULL,
    message_id   TEXT NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_try     REAL NOT NULL,
    created      REAL NOT NULL,
    last_error   TEXT NOT NULL DEFAULT '',
    done_at      REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_try);
"""


def default_path(configured: str) -> Path:
    """``store_path``, else ``email.sqlite`` in the state folder (``$STATE_DIRECTORY``, else ``$XDG_STATE_HOME/assistant``)."""
    return paths.under_state(configured, "email.sqlite")


@dataclass(frozen=True)
class OutgoingMail:
    send_id: str
    recipients: list[str]
    subject: str
    body: str
    in_reply_to: str
    message_id: str
    state: str
    attempts: int
    next_try: float
    created: float
    last_error: str


class MailStore:
    """Handled Message-IDs and the outbox, persisted."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] | None = None) -> None:
        #: Stored times (first seen, handled, queued, next try): a wall-clock scale that a stepped
        #: system clock does not move while the process runs (``assistant.clock.SteadyClock``).
        self.clock = clock or SteadyClock()
        self.path = Path(path)
        self._lock = threading.Lock()

        def setup(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA busy_timeout = 30000")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)

        # A damaged file is moved aside; a full disk or a lock raises StoreFault (retried by the service).
        self._db = open_sqlite(self.path, "email store", setup)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- incoming ---------------------------------------------------------------------------
    def mail_id_for(self, message_id: str, digest: str) -> tuple[str, str | None]:
        """The stable id of a mail and its state (``None``: never seen).

        Copies with the same Message-ID and content are one mail. A different mail that reuses a
        Message-ID (broken or hostile sender) gets ``<id>#<digest>`` so it is neither lost nor
        confused with the first. No Message-ID: ``sha256:<digest>``.
        """
        with self._lock:
            if not message_id:
                mail_id = "sha256:" + digest[:32]
                row = self._db.execute("SELECT state FROM mails WHERE mail_id = ?", (mail_id,)).fetchone()
                return mail_id, row[0] if row else None
            rows = self._db.execute("SELECT mail_id, digest, state FROM mails WHERE message_id = ?", (message_id,)).fetchall()
        for mail_id, known, state in rows:
            if known == digest:
                return mail_id, state
        return (message_id if not rows else f"{message_id}#{digest[:16]}"), None

    def record_delivery(self, mail_id: str, message_id: str, digest: str, sender: str) -> int:
        """Count one more publication of ``mail_id`` (creating its row); returns the count."""
        with self._lock:
            self._db.execute(
                "INSERT INTO mails (mail_id, message_id, digest, sender, state, deliveries, first_seen) VALUES (?, ?, ?, ?, 'delivered', 1, ?)"
                " ON CONFLICT (mail_id) DO UPDATE SET deliveries = deliveries + 1",
                (mail_id, message_id, digest, sender, self.clock()),
            )
            return self._db.execute("SELECT deliveries FROM mails WHERE mail_id = ?", (mail_id,)).fetchone()[0]

    def mark_handled(self, mail_id: str) -> bool:
        """Record the brain's ack; ``False`` when the mail is unknown."""
        with self._lock:
            cur = self._db.execute("UPDATE mails SET state = 'handled', handled_at = COALESCE(handled_at, ?) WHERE mail_id = ?", (self.clock(), mail_id))
            return cur.rowcount > 0

    def mail_state(self, mail_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT state FROM mails WHERE mail_id = ?", (mail_id,)).fetchone()
        return row[0] if row else None

    # --- outgoing ---------------------------------------------------------------------------
    def outbox_add(self, send_id: str, recipients: list[str], subject: str, body: str, in_reply_to: str, message_id: str) -> OutgoingMail | None:
        """Queue a mail; returns the existing entry instead when ``send_id`` is known (idempotent)."""
        now = self.clock()
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO outbox (send_id, recipients, subject, body, in_reply_to, message_id, state, next_try, created)"
                " VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (send_id) DO NOTHING",
                (send_id, json.dumps(recipients), subject, body, in_reply_to, message_id, now, now),
            )
            if cur.rowcount:
                return None
        return self.outbox_get(send_id)

    def outbox_get(self, send_id: str) -> OutgoingMail | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_OUT_COLS} FROM outbox WHERE send_id = ?", (send_id,)).fetchone()
        return _outgoing(row) if row else None

    def outbox_due(self, now: float, limit: int = 100, horizon_s: float | None = None) -> list[OutgoingMail]:
        """Pending mails whose next try has come, and (given ``horizon_s``) those set further than
        that ahead: written before the clock was set back, they would otherwise wait that long."""
        horizon_s = float("inf") if horizon_s is None else horizon_s
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_OUT_COLS} FROM outbox WHERE state = 'pending' AND (next_try <= ? OR next_try > ?) ORDER BY next_try, created LIMIT ?",
                (now, now + horizon_s, limit),
            ).fetchall()
        return [_outgoing(r) for r in rows]

    def outbox_next_due(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(next_try) FROM outbox WHERE state = 'pending'").fetchone()
        return row[0]

    def outbox_pending(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()[0]

    def outbox_retry_later(self, send_id: str, next_try: float, error: str) -> int:
        """Count a failed attempt; returns the attempts so far."""
        with self._lock:
            self._db.execute("UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ? WHERE send_id = ?", (next_try, error[:500], send_id))
            return self._db.execute("SELECT attempts FROM outbox WHERE send_id = ?", (send_id,)).fetchone()[0]

    def outbox_done(self, send_id: str, state: str, error: str = "") -> None:
        assert state in ("sent", "failed")
        with self._lock:
            self._db.execute("UPDATE outbox SET state = ?, last_error = ?, done_at = ?, attempts = attempts + 1 WHERE send_id = ?", (state, error[:500], self.clock(), send_id))


    def outbox_forget_sent(self, older_than: float) -> int:
        """Blank subject and body of mail sent or failed before ``older_than`` (retention); the ids stay for idempotency."""
        with self._lock:
            return self._db.execute("UPDATE outbox SET subject = '', body = '', recipients = '[]' WHERE state != 'pending' AND done_at < ? AND body != ''",
                                    (older_than,)).rowcount


_OUT_COLS = "send_id, recipients, subject, body, in_reply_to, message_id, state, attempts, next_try, created, last_error"


def _outgoing(row: tuple) -> OutgoingMail:
    return OutgoingMail(row[0], json.loads(row[1]), *row[2:])
