"""Outgoing mail: a persistent outbox drained to SMTP by one thread, with retries and backoff.

``submit`` validates a request and writes it to the store before anything else happens, so a
request the service has accepted survives a crash. The thread sends what is due over one SMTP
connection. While the server is unreachable the whole outbox waits (one backoff for the
connection, so fifty queued mails do not make fifty connection attempts); a 4xx answer for one
mail delays that mail alone; a 5xx answer fails it for good.

The Message-ID is fixed when a mail is queued: if the process dies after the server accepted a
mail but before the store says "sent", the resend carries the same Message-ID and receiving
mail systems can drop the copy.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone
from typing import Callable

from assistant import backoff
from assistant.config import EmailSettings
from assistant.messages import EmailSend

from assistant.clock import clamp_future
from assistant.workers import Workers

from .credentials import CredentialError, read_secret, tls_context
from .store import MailStore, OutgoingMail

log = logging.getLogger(__name__)

_ADDR = re.compile(r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_MSGID = re.compile(r"^<[^<>\s]{1,250}>$")
MAX_RECIPIENTS = 50
MAX_BODY_CHARS = 1_000_000


class Rejected(ValueError):
    """A send request that can never be sent as it is."""


def validate(req: EmailSend) -> tuple[list[str], str, str, str]:
    """(recipients, subject, body, in_reply_to) checked and cleaned; ``Rejected`` otherwise.

    Headers are built from these, so CR/LF never gets through (header injection)."""
    if not req.send_id or len(req.send_id) > 200:
        raise Rejected("send_id must be 1 to 200 characters")
    if not req.to or len(req.to) > MAX_RECIPIENTS:
        raise Rejected(f"to must list 1 to {MAX_RECIPIENTS} addresses")
    bad = [a for a in req.to if not _ADDR.match(a.strip())]
    if bad:
        raise Rejected(f"not a plain address: {bad[0][:100]!r}")
    if len(req.body) > MAX_BODY_CHARS:
        raise Rejected(f"body longer than {MAX_BODY_CHARS} characters")
    subject = " ".join(req.subject.replace("\r", " ").replace("\n", " ").split())[:900]
    in_reply_to = req.in_reply_to.strip()
    if in_reply_to and not _MSGID.match(in_reply_to):
        raise Rejected(f"in_reply_to is not a Message-ID: {in_reply_to[:100]!r}")
    return [a.strip() for a in req.to], subject, req.body, in_reply_to


class _ConnectionTrouble(Exception):
    """The server is unreachable or the connection broke: retry the whole outbox later."""


class Outbox:
    """Queues and sends mail; ``on_sent(send_id, message_id)`` / ``on_failed(send_id, error, permanent)``
    are called from its thread."""

    def __init__(
        self,
        settings: EmailSettings,
        store: MailStore,
        on_sent: Callable[[str, str], None],
        on_failed: Callable[[str, str, bool], None],
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_sent = on_sent
        self.on_failed = on_failed
        # Next tries and give-up ages on the store's steady clock: a stepped system clock neither
        # fails a queued mail early nor parks it for a year.
        self.clock = clock or store.clock
        #: A next try further ahead than this was written under a clock since set back.
        self._horizon_s = 2 * max(settings.send_backoff_s or (60.0,)) + 60.0
        self.from_address = settings.from_address or (settings.username if "@" in settings.username else "")
        self.stats = {"mail_sent": 0, "mail_send_failed": 0, "smtp_errors": 0, "outbox_pending": 0}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = backoff.Backoff(settings.send_backoff_s)
        self._not_before = 0.0  # connection backoff: nothing is tried before this (monotonic)
        self._next_purge = 0.0  # retention of sent mail bodies, checked hourly (monotonic)

    # --- any thread ---------------------------------------------------------------------------
    def submit(self, req: EmailSend) -> None:
        """Validate and queue (blocking: a store write). Duplicate ``send_id``s are answered from the store."""
        try:
            if not self.from_address:
                raise Rejected("no sender address: set email.from_address")
            recipients, subject, body, in_reply_to = validate(req)
        except Rejected as exc:
            self.stats["mail_send_failed"] += 1
            log.warning("email.send %s rejected: %s", req.send_id[:200], exc)
            self.on_failed(req.send_id, str(exc), True)
            return
        domain = self.from_address.rpartition("@")[2]
        existing = self.store.outbox_add(req.send_id, recipients, subject, body, in_reply_to, make_msgid(domain=domain))
        if existing is not None:
            # Idempotent per send_id: repeat the outcome instead of sending again.
            if existing.state == "sent":
                self.on_sent(existing.send_id, existing.message_id)
            elif existing.state == "failed":
                self.on_failed(existing.send_id, existing.last_error, True)
            return
        self._wake.set()

    def start(self, workers: Workers | None = None) -> None:
        """Run on one of ``workers`` (the service's; alone, a group of its own)."""
        self._thread = (workers if workers is not None else Workers("email-smtp")).start("email-smtp", self._run)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._drain()
            except Exception:  # noqa: BLE001 - a bug must not stop the outbox for good
                log.exception("outbox failed; retrying")
                self._not_before = time.monotonic() + self._backoff.next()
            self.stats["outbox_pending"] = self.store.outbox_pending()
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + 3600.0
                self.store.outbox_forget_sent(self.clock() - self.settings.sent_retention_s)
            self._wake.wait(self._sleep_time())
            self._wake.clear()

    def _sleep_time(self) -> float:
        next_due = self.store.outbox_next_due()
        if next_due is None:
            return 5.0
        now = self.clock()
        wait = max(clamp_future(next_due, now, self._horizon_s) - now, self._not_before - time.monotonic())
        return min(max(wait, 0.0), 5.0)

    def _drain(self) -> None:
        if time.monotonic() < self._not_before:
            return
        due = self.store.outbox_due(self.clock(), horizon_s=self._horizon_s)
        if not due:
            return
        try:
            with self._connect() as smtp:
                self._backoff.reset()
                for mail in due:
                    if self._stop.is_set():
                        return
                    self._send_one(smtp, mail)
        except (_ConnectionTrouble, OSError, smtplib.SMTPException, CredentialError) as exc:
            self.stats["smtp_errors"] += 1
            delay = self._backoff.next()
            self._not_before = time.monotonic() + delay
            log.warning("SMTP %s:%s: %s; %d mail(s) wait, next try in %.1f s", self.settings.smtp_host, self.settings.smtp_port, exc, self.store.outbox_pending(), delay)
            self._give_up_old()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        ctx = tls_context(s.tls_verify, s.ca_file) if s.smtp_tls != "none" else None
        try:
            if s.smtp_tls == "ssl":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.timeout_s, context=ctx)
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.timeout_s)
                if s.smtp_tls == "starttls":
                    smtp.starttls(context=ctx)  # raises when the server does not offer it: never send in the clear by accident
            if s.smtp_username:
                smtp.login(s.smtp_username, read_secret(s.smtp_password_file or s.password_file, "smtp_password_file" if s.smtp_password_file else "password_file"))
        except (OSError, smtplib.SMTPException, ssl.SSLError, socket.timeout) as exc:
            raise _ConnectionTrouble(f"{type(exc).__name__}: {exc}") from None
        return smtp

    def _send_one(self, smtp: smtplib.SMTP, mail: OutgoingMail) -> None:
        msg = self._compose(mail)
        try:
            refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            self._mail_failed(mail, f"recipients refused: {exc.recipients}", permanent=all(c >= 500 for c in codes))
            return
        except smtplib.SMTPResponseException as exc:
            if isinstance(exc, smtplib.SMTPServerDisconnected):
                raise
            self._mail_failed(mail, f"{exc.smtp_code} {exc.smtp_error!r}", permanent=exc.smtp_code >= 500)
            smtp.rset()
            return
        if refused:
            log.warning("mail %s: some recipients refused: %s", mail.send_id, refused)
        self.store.outbox_done(mail.send_id, "sent")
        self.stats["mail_sent"] += 1
        log.info("sent %s as %s", mail.send_id, mail.message_id)
        self.on_sent(mail.send_id, mail.message_id)

    def _compose(self, mail: OutgoingMail) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.from_address
        msg["To"] = ", ".join(mail.recipients)
        msg["Subject"] = mail.subject
        msg["Date"] = format_datetime(datetime.now(timezone.utc))
        msg["Message-ID"] = mail.message_id
        if mail.in_reply_to:
            msg["In-Reply-To"] = mail.in_reply_to
            msg["References"] = mail.in_reply_to
        msg["Auto-Submitted"] = "auto-replied" if mail.in_reply_to else "auto-generated"  # RFC 3834: no auto-reply loops
        msg.set_content(mail.body)
        return msg

    def _mail_failed(self, mail: OutgoingMail, error: str, *, permanent: bool) -> None:
        too_old = self.clock() - mail.created > self.settings.send_give_up_s
        if permanent or too_old:
            self.store.outbox_done(mail.send_id, "failed", error)
            self.stats["mail_send_failed"] += 1
            log.warning("mail %s failed for good: %s", mail.send_id, error)
            self.on_failed(mail.send_id, error, True)
            return
        delay = backoff.delay(self.settings.send_backoff_s, mail.attempts, default=60.0)
        self.store.outbox_retry_later(mail.send_id, self.clock() + delay, error)
        log.info("mail %s: %s; retry in %.0f s", mail.send_id, error, delay)

    def _give_up_old(self) -> None:
        """While the server stays unreachable, mails older than ``send_give_up_s`` fail for good."""
        for mail in self.store.outbox_due(self.clock(), limit=1000, horizon_s=self._horizon_s):
            if self.clock() - mail.created > self.settings.send_give_up_s:
                self._mail_failed(mail, "SMTP server unreachable for too long", permanent=True)
