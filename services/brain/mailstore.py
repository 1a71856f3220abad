"""Durable store for mail the brain took responsibility for, and for mail it asked to send.

The brain acknowledges an ``email.received`` only after the mail is committed here, so a crash
or restart loses nothing: personal messages stay pending until they were read out in full,
announcements until spoken, and outgoing requests until the email service reports them sent or
failed (the brain re-publishes pending ones; sending is idempotent per ``send_id``).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.storefile import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    mail_id     TEXT PRIMARY KEY,
    recipient   TEXT NOT NULL,      -- name key of the person it is for; '' for an announcement
    sender      TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    subject     TEXT NOT NULL,
    body        TEXT NOT NULL,
    stored_at   REAL NOT NULL,      -- wall clock (survives reboots, unlike monotonic time)
    done_at     REAL                -- read out / announced; NULL while pending
);
CREATE TABLE IF NOT EXISTS outbox (
    send_id    TEXT PRIMARY KEY,
    recipients TEXT NOT NULL,       -- comma separated
    subject    TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at REAL NOT NULL,
    status     TEXT NOT NULL,       -- pending, sent, failed
    detail     TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class StoredMail:
    mail_id: str
    recipient: str
    sender: str
    sender_name: str
    subject: str
    body: str
    stored_at: float


@dataclass(frozen=True)
class Outgoing:
    send_id: str
    recipients: tuple[str, ...]
    subject: str
    body: str


class MailStore:
    """sqlite in WAL mode with full sync; used from the service loop thread only."""

    def __init__(self, path: Path | str, clock=time.time) -> None:
        def setup(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)

        # A damaged file is moved aside; a full disk or a lock raises StoreFault (retried by the service).
        self.db = open_sqlite(path, "brain mail store", setup)
        self.clock = clock

    def close(self) -> None:
        self.db.close()

    # --- incoming ----------------------------------------------------------------------
    def store(self, mail: StoredMail) -> bool:
        """Commit a received mail; ``False`` when this ``mail_id`` was stored before (a redelivery)."""
        with self.db:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO inbox VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                (mail.mail_id, mail.recipient, mail.sender, mail.sender_name, mail.subject, mail.body, mail.stored_at),
            )
        return cur.rowcount == 1

    def pending_for(self, recipient_keys: list[str]) -> list[StoredMail]:
        """Undelivered personal mail for any of these name keys, oldest first."""
        if not recipient_keys:
            return []
        marks = ",".join("?" * len(recipient_keys))
        rows = self.db.execute(
            f"SELECT mail_id, recipient, sender, sender_name, subject, body, stored_at FROM inbox "
            f"WHERE done_at IS NULL AND recipient IN ({marks}) ORDER BY stored_at, rowid", recipient_keys,
        ).fetchall()
        return [StoredMail(*r) for r in rows]

    def recipients(self) -> list[str]:
        """Name keys that have undelivered personal mail."""
        return [r[0] for r in self.db.execute("SELECT DISTINCT recipient FROM inbox WHERE done_at IS NULL AND recipient != ''")]

    def pending_announcements(self, max_age_s: float) -> list[StoredMail]:
        """Announcements not yet spoken and younger than ``max_age_s``, oldest first."""
        rows = self.db.execute(
            "SELECT mail_id, recipient, sender, sender_name, subject, body, stored_at FROM inbox "
            "WHERE done_at IS NULL AND recipient = '' AND stored_at >= ? ORDER BY stored_at, rowid",
            (self.clock() - max_age_s,),
        ).fetchall()
        return [StoredMail(*r) for r in rows]

    def mark_done(self, mail_ids: list[str]) -> None:
        with self.db:
            self.db.executemany("UPDATE inbox SET done_at = ? WHERE mail_id = ? AND done_at IS NULL", [(self.clock(), m) for m in mail_ids])

    def purge(self, older_than_s: float) -> int:
        """Delete mail stored, and send records created, more than ``older_than_s`` ago (retention)."""
        cutoff = self.clock() - older_than_s
        with self.db:
            n = self.db.execute("DELETE FROM inbox WHERE stored_at < ?", (cutoff,)).rowcount
            n += self.db.execute("DELETE FROM outbox WHERE created_at < ? AND status != 'pending'", (cutoff,)).rowcount
        return n

    def forget(self, key: str) -> int:
        """Delete every mail for the person with name key ``key`` (``assistant forget``)."""
        with self.db:
            return self.db.execute("DELETE FROM inbox WHERE recipient = ?", (key,)).rowcount

    # --- outgoing ----------------------------------------------------------------------
    def queue(self, out: Outgoing) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO outbox VALUES (?, ?, ?, ?, ?, 'pending', '')",
                (out.send_id, ",".join(out.recipients), out.subject, out.body, self.clock()),
            )

    def outgoing(self) -> list[Outgoing]:
        """Send requests not yet confirmed sent or failed."""
        rows = self.db.execute("SELECT send_id, recipients, subject, body FROM outbox WHERE status = 'pending' ORDER BY created_at, rowid")
        return [Outgoing(r[0], tuple(r[1].split(",")), r[2], r[3]) for r in rows]

    def finish(self, send_id: str, status: str, detail: str = "") -> bool:
        """Record the email service's verdict; ``False`` for an id that was not pending."""
        with self.db:
            cur = self.db.execute("UPDATE outbox SET status = ?, detail = ? WHERE send_id = ? AND status = 'pending'", (status, detail, send_id))
        return cur.rowcount == 1
