"""The IMAP side: watch the inbox (IDLE, or polling), hand each mail to the intake, file it.

One thread owns one IMAP connection. It reconnects with backoff after any network or server
failure, and after each (re)connection it looks at everything in the inbox again: what was in
flight is decided afresh by the intake and the store, so a broken connection loses nothing.

A mail leaves the inbox only in two ways: to the quarantine folder (unauthorised), or flagged and
moved to the processed folder after the brain's ack has been written to the store. Nothing is
ever expunged except by the non-MOVE fallback, and then only after the copy succeeded.
"""

from __future__ import annotations

import imaplib
import logging
import queue
import socket
import ssl
import threading
import time
from typing import Callable

from assistant.backoff import Backoff
from assistant.config import EmailSettings
from assistant.messages import EmailReceived
from assistant.workers import Workers

from .credentials import CredentialError, read_secret, tls_context
from .intake import Intake

log = logging.getLogger(__name__)

HANDLED_KEYWORD = b"$AssistantHandled"
#: Errors after which the connection is dropped and made again.
NETWORK_ERRORS = (OSError, imaplib.IMAP4.error, ssl.SSLError, EOFError, socket.timeout)
_FETCH_BATCH = 16  # messages per FETCH: bounds memory at 16 x max_message_bytes
_RESYNC_S = 5.0  # safety-net look at the inbox while idling
_SETTLE_S = 1.1  # one more look this long after a look that found mail (see _session)


class MailboxWatcher:
    """Watches ``settings.inbox`` on a thread; ``deliver(event)`` is called from that thread."""

    def __init__(self, settings: EmailSettings, intake: Intake, deliver: Callable[[EmailReceived], None]) -> None:
        self.settings = settings
        self.intake = intake
        self.deliver = deliver
        self.stats = {"mail_delivered": 0, "mail_redelivered": 0, "mail_quarantined": 0, "mail_processed": 0, "imap_reconnects": 0, "imap_errors": 0, "ack_unknown": 0}
        self.connected = threading.Event()
        self.mode = ""  # "idle" or "polling" once connected
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._acked: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._uid_mail: dict[int, str] = {}  # uids in the inbox this session -> mail_id
        self._skip: set[int] = set()  # uids whose examination failed (left in the inbox, not retried this session)
        self._thread: threading.Thread | None = None
        # imapclient logs every command and response at DEBUG: megabytes of mail bodies in the
        # journal. Its LOGIN is redacted, but the bodies are private too.
        logging.getLogger("imapclient").setLevel(logging.WARNING)

    # --- control (any thread) ---------------------------------------------------------------
    def start(self, workers: Workers | None = None) -> None:
        """Run on one of ``workers`` (the service's; alone, a group of its own)."""
        self._thread = (workers if workers is not None else Workers("email-imap")).start("email-imap", self._run)

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def ack(self, mail_id: str) -> bool:
        """Record the brain's ack (blocking: a store write), then let the IMAP thread file the mail."""
        known = self.intake.ack(mail_id)
        if not known:
            self.stats["ack_unknown"] += 1
            log.warning("ack for unknown mail %s ignored", mail_id[:300])
            return False
        self._acked.put(mail_id)
        self._wake.set()
        return True

    # --- the thread -------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_backoff_s)
        while not self._stop.is_set():
            client = None
            try:
                client = self._connect()
                backoff.reset()
                self._session(client)
                continue
            except CredentialError as exc:
                delay = backoff.next()
                log.error("%s; retrying in %.1f s", exc, delay)
            except NETWORK_ERRORS as exc:
                delay = backoff.next()
                log.warning("IMAP %s:%s: %s: %s; reconnecting in %.1f s", self.settings.imap_host, self.settings.imap_port, type(exc).__name__, exc, delay)
            except Exception:  # noqa: BLE001 - a bug must not end mail handling for good
                delay = backoff.next()
                log.exception("IMAP session failed; reconnecting in %.1f s", delay)
            finally:
                self.connected.clear()
                if client is not None:
                    _close_quietly(client)
            self.stats["imap_errors"] += 1
            self._stop.wait(delay)
            self.stats["imap_reconnects"] += 1

    def _connect(self):
        from imapclient import IMAPClient  # the email extra; only this process needs it

        s = self.settings
        ctx = tls_context(s.tls_verify, s.ca_file) if s.imap_tls != "none" else None
        client = IMAPClient(s.imap_host, port=s.imap_port, ssl=s.imap_tls == "ssl", ssl_context=ctx, timeout=s.timeout_s)
        try:
            if s.imap_tls == "starttls":
                client.starttls(ctx)
            client.login(s.username, read_secret(s.password_file, "password_file"))
            for folder in (s.processed_folder, s.quarantine_folder):
                if not client.folder_exists(folder):
                    client.create_folder(folder)
            client.select_folder(s.inbox)
        except BaseException:
            _close_quietly(client)
            raise
        log.info("IMAP connected to %s:%s as %s (%s)", s.imap_host, s.imap_port, s.username, "IDLE" if self._can_idle(client) else "polling")
        return client

    def _can_idle(self, client) -> bool:
        return self.settings.use_idle and client.has_capability("IDLE")

    def _session(self, client) -> None:
        self._uid_mail.clear()
        self._skip.clear()
        self.connected.set()
        idle = self._can_idle(client)
        self.mode = "idle" if idle else "polling"
        settling = False
        while not self._stop.is_set():
            self._wake.clear()
            found = self._sync(client)
            if not idle:
                self._wake.wait(self.settings.poll_interval_s)
                continue
            # Maildir servers notice files written by an outside delivery agent through the
            # folder's mtime, in whole seconds: a mail that lands in the same second as our last
            # look can stay unannounced until something else changes. One more look just after
            # that second closes the gap; it is not repeated while nothing new turns up.
            settle_at = time.monotonic() + _SETTLE_S if (found or not settling) else None
            settling = self._wait_idle(client, settle_at)

    def _wait_idle(self, client, settle_at: float | None) -> bool:
        """IDLE until new mail, an ack to file, a stop, the renewal time, or the next look.

        Returns whether it ended for the settling look."""
        now = time.monotonic()
        renew_at = now + self.settings.idle_renew_s
        # A look every few seconds also runs the redelivery timer and catches anything a server
        # forgot to announce; it costs one SEARCH.
        look_at = now + min(_RESYNC_S, self.settings.redeliver_after_s)
        client.idle()
        try:
            while not self._stop.is_set() and not self._wake.is_set():
                t0 = time.monotonic()
                responses = client.idle_check(timeout=0.2)
                if any(len(r) > 1 and r[1] in (b"EXISTS", b"RECENT") for r in responses):
                    return False
                if any(r and r[0] == b"BYE" for r in responses):
                    raise ConnectionError("server said BYE")
                # imapclient's idle_check returns [] at once on EOF; idle_done then raises.
                if not responses and time.monotonic() - t0 < 0.05:
                    return False
                now = time.monotonic()
                if settle_at is not None and now >= settle_at:
                    return True
                if now >= renew_at or now >= look_at:
                    return False
            return False
        finally:
            client.idle_done()

    def _sync(self, client) -> int:
        """File acked mail, examine new mail, run redeliveries; returns how many mails were new."""
        self._file_acked(client)
        client.noop()  # makes the server look at the mailbox (SEARCH alone may use its cached view)
        uids = client.search(["NOT", "DELETED"])
        present = set(uids)
        for uid in [u for u in self._uid_mail if u not in present]:
            del self._uid_mail[uid]  # gone (moved by us, or by someone else)
        new = [u for u in uids if u not in self._uid_mail and u not in self._skip]
        for i in range(0, len(new), _FETCH_BATCH):
            if self._stop.is_set():
                return len(new)
            self._examine_batch(client, new[i : i + _FETCH_BATCH])
            self._file_acked(client)  # acks keep flowing during a large backlog
        for event in self.intake.due_redeliveries():
            self.stats["mail_redelivered"] += 1
            log.info("redelivering unacknowledged mail %s (delivery %d)", event.mail_id, event.delivery)
            self.deliver(event)
        return len(new)

    def _examine_batch(self, client, uids: list[int]) -> None:
        limit = self.settings.max_message_bytes
        section = f"BODY.PEEK[]<0.{limit}>"
        fetched = client.fetch(uids, ["RFC822.SIZE", section])
        quarantine, processed = [], []
        for uid in uids:
            data = fetched.get(uid)
            if data is None:
                continue  # vanished between SEARCH and FETCH
            raw = data.get(b"BODY[]<0>") or b""
            size = data.get(b"RFC822.SIZE")
            try:
                decision = self.intake.examine(raw, size)
            except Exception:  # noqa: BLE001 - leave the mail where it is; never lose it
                self._skip.add(uid)
                self.stats["imap_errors"] += 1
                log.exception("could not examine message uid %s; left in %s", uid, self.settings.inbox)
                continue
            log.debug("uid %s (%s bytes): %s %s", uid, size, decision.action, decision.mail_id[:200])
            if decision.action == "quarantine":
                log.info("quarantining uid %s: %s", uid, decision.reason)
                quarantine.append(uid)
            elif decision.action == "processed":
                processed.append(uid)
            else:
                self._uid_mail[uid] = decision.mail_id
                if decision.event is not None:
                    self.stats["mail_delivered"] += 1
                    self.deliver(decision.event)
        if quarantine:
            self._move(client, quarantine, self.settings.quarantine_folder)
            self.stats["mail_quarantined"] += len(quarantine)
        if processed:
            self._file_processed(client, processed)

    def _file_acked(self, client) -> None:
        uids = []
        while True:
            try:
                mail_id = self._acked.get_nowait()
            except queue.Empty:
                break
            uids += [u for u, m in self._uid_mail.items() if m == mail_id]
        # A mail acked whose uid this session does not know yet is filed by the next sync,
        # which finds it handled in the store.
        if uids:
            self._file_processed(client, uids)
            for uid in uids:
                self._uid_mail.pop(uid, None)

    def _file_processed(self, client, uids: list[int]) -> None:
        try:
            client.add_flags(uids, [b"\\Seen", HANDLED_KEYWORD])
        except imaplib.IMAP4.error as exc:
            if isinstance(exc, imaplib.IMAP4.abort):
                raise
            client.add_flags(uids, [b"\\Seen"])  # a server without keywords: \Seen is enough
        self._move(client, uids, self.settings.processed_folder)
        self.stats["mail_processed"] += len(uids)

    def _move(self, client, uids: list[int], folder: str) -> None:
        if client.has_capability("MOVE"):
            client.move(uids, folder)
            return
        # COPY, then delete the originals only once the copy exists.
        client.copy(uids, folder)
        client.delete_messages(uids)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()


def _close_quietly(client) -> None:
    try:
        client.logout()
    except Exception:  # noqa: BLE001
        try:
            client.shutdown()
        except Exception:  # noqa: BLE001
            pass
