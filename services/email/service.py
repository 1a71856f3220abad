"""The email service: IMAP in (``email.received``, filed after ``email.ack``), SMTP out (``email.send``).

A thin handler over the engines: the mailbox watcher and the outbox each run on one of the
service's workers with a network connection of their own; this loop only hands them acks and send
requests (store writes, so through ``submit``) and publishes what they report. The store, the
watcher and the outbox go on the service's exit stack as they open.
"""

from __future__ import annotations

import logging
import sqlite3

from assistant.config import EmailSettings
from assistant.messages import EmailAck, EmailFailed, EmailReceived, EmailSend, EmailSent, Received
from assistant.service import Service, SetupError, on

from .credentials import read_secret
from .store import MailStore, default_path

log = logging.getLogger(__name__)


class EmailService(Service):
    """Read the kiosk's mailbox (IMAP IDLE) for the brain and send its mail (SMTP outbox)."""

    name = "email"

    def setup(self) -> None:
        s: EmailSettings = self.config.email
        self.store = self.watcher = self.outbox = None
        if not s.enabled:
            log.warning("email is disabled ([email] enabled = false); acks and send requests are ignored")
            return
        try:
            import imapclient  # noqa: F401
            import nh3  # noqa: F401
        except ImportError as exc:
            raise RuntimeError(f"{exc.name} is missing; install the email extra: pip install 'embodied-assistant[email]'") from None
        from .authorise import Authoriser
        from .imap import MailboxWatcher
        from .intake import Intake
        from .outbox import Outbox

        authoriser = Authoriser(s.allowed_senders, require_dkim=s.require_dkim, require_spf=s.require_spf, authserv_id=s.authserv_id,
                                dkim_keys=dict(s.dkim_keys), dkim_timeout_s=s.dkim_timeout_s)
        if authoriser.empty:
            log.warning("email.allowed_senders is empty: every mail will be quarantined")
        read_secret(s.password_file, "password_file")  # fail at start, with the fix, not at first login (exit 2)
        path = default_path(s.store_path)
        try:
            # A full disk or a locked file: degraded and retried (a damaged file is moved aside).
            self.store = self.hold(self.until_available(lambda: MailStore(path)))
        except (OSError, sqlite3.Error) as exc:
            raise SetupError(f"email.store_path: cannot use {path} as the mail store ({type(exc).__name__}: {exc}); "
                             "point it at a writable file") from None
        intake = Intake(self.store, authoriser, s)
        watcher = self.watcher = MailboxWatcher(s, intake, self._deliver)
        watcher.start(self.workers)
        self.hold(watcher, lambda: watcher.stop(timeout=1.0))
        outbox = self.outbox = Outbox(s, self.store, self._sent, self._failed)
        outbox.start(self.workers)
        self.hold(outbox, lambda: outbox.stop(timeout=1.0))
        log.info("email: store %s, watching %s on %s:%s", self.store.path, s.inbox, s.imap_host, s.imap_port)

    # --- from the engines' threads (publish is thread-safe) -----------------------------------
    def _deliver(self, event: EmailReceived) -> None:
        self.publish(event)

    def _sent(self, send_id: str, message_id: str) -> None:
        self.publish(EmailSent(send_id=send_id, message_id=message_id))

    def _failed(self, send_id: str, error: str, permanent: bool) -> None:
        self.publish(EmailFailed(send_id=send_id, error=error, permanent=permanent))

    # --- bus handlers -------------------------------------------------------------------------
    @on(EmailAck)
    def handle_ack(self, rx: Received) -> None:
        if self.watcher is None:
            self.count("ignored_disabled")
            return
        self.count("acks")
        self.submit(self.watcher.ack, rx.msg.mail_id, then=self._check)

    @on(EmailSend)
    def handle_send(self, rx: Received) -> None:
        if self.outbox is None:
            self.count("ignored_disabled")
            self._failed(rx.msg.send_id, "email is disabled on this kiosk", True)
            return
        self.count("send_requests")
        self.submit(self.outbox.submit, rx.msg, then=self._check)

    def _check(self, fut) -> None:
        """Worker failures (a store that cannot be written) must show up, not vanish in a future."""
        if fut.exception() is not None:
            self.count("worker_errors")
            log.error("email worker failed: %s: %s", type(fut.exception()).__name__, fut.exception())

    def heartbeat_counters(self) -> dict[str, float]:
        out = dict(self.counters)
        for engine in (self.watcher, self.outbox):
            if engine is not None:
                out.update(engine.stats)
        if self.watcher is not None:
            out["imap_connected"] = float(self.watcher.connected.is_set())
            out["mail_waiting_ack"] = self.watcher.intake.waiting
        return out


main = EmailService.main
