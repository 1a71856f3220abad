"""What to do with each mail found in the inbox: deliver it to the brain, wait, file it, or quarantine it.

The delivery state machine, with no IMAP and no bus in it:

- unauthorised -> ``quarantine`` (never acted on, never deleted);
- already handled (acked before, maybe in an earlier life of the process) -> ``processed``;
- published by this process and not yet acked -> ``wait`` (the ack or the redelivery timer moves it on);
- otherwise -> ``deliver``: the delivery is counted in the store *before* the event is returned,
  so a crash after publishing redelivers the same ``mail_id`` with a higher ``delivery``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

import msgspec

from assistant.messages import EmailReceived

from .authorise import Authoriser
from .parse import parse_mail
from .store import MailStore

if TYPE_CHECKING:
    from assistant.config.schema import EmailSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    action: Literal["deliver", "wait", "processed", "quarantine"]
    mail_id: str = ""
    event: EmailReceived | None = None
    reason: str = ""


class Intake:
    """Decides per mail; remembers what this process published and is waiting for an ack."""

    def __init__(
        self,
        store: MailStore,
        authoriser: Authoriser,
        settings: EmailSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.authoriser = authoriser
        self.max_text_chars = settings.max_text_chars
        self.max_parts = settings.max_parts
        self.redeliver_after_s = settings.redeliver_after_s
        self.clock = clock
        self._published: dict[str, tuple[float, EmailReceived]] = {}
        # examine() and ack() for the same mail can race (a resync after a reconnect while the ack
        # lands); one lock around both keeps "published twice" impossible within a process.
        self._lock = threading.Lock()

    def examine(self, raw: bytes, size: int | None = None) -> Decision:
        mail = parse_mail(raw, full_size=size, max_text_chars=self.max_text_chars, max_parts=self.max_parts)
        verdict = self.authoriser.check(mail, raw)
        if not verdict.allowed:
            return Decision("quarantine", reason=verdict.reason)
        with self._lock:
            mail_id, state = self.store.mail_id_for(mail.message_id, mail.digest)
            if state == "handled":
                return Decision("processed", mail_id, reason="handled before")
            if mail_id in self._published:
                return Decision("wait", mail_id, reason="waiting for the ack")
            delivery = self.store.record_delivery(mail_id, mail.message_id, mail.digest, mail.sender)
            event = EmailReceived(
                mail_id=mail_id,
                sender=mail.sender,
                sender_name=mail.sender_name,
                subject=mail.subject,
                text=mail.text,
                to=mail.to,
                received_ns=time.monotonic_ns(),
                attachments=mail.attachments,
                truncated=mail.truncated,
                message_id=mail.message_id,
                delivery=delivery,
            )
            self._published[mail_id] = (self.clock(), event)
        return Decision("deliver", mail_id, event, verdict.reason)

    def ack(self, mail_id: str) -> bool:
        """The brain took the mail: record it as handled. ``False`` for an unknown ``mail_id``."""
        with self._lock:
            self._published.pop(mail_id, None)
            return self.store.mark_handled(mail_id)

    def due_redeliveries(self) -> list[EmailReceived]:
        """Events to publish again: unacked for ``redeliver_after_s``."""
        now = self.clock()
        out = []
        with self._lock:
            for mail_id, (when, event) in list(self._published.items()):
                if now - when >= self.redeliver_after_s:
                    delivery = self.store.record_delivery(mail_id, event.message_id, "", event.sender)
                    event = msgspec.structs.replace(event, delivery=delivery)
                    self._published[mail_id] = (now, event)
                    out.append(event)
        return out

    def forget_waiting(self) -> None:
        """Drop the memory of unacked deliveries (tests; a fresh process starts this way)."""
        with self._lock:
            self._published.clear()

    @property
    def waiting(self) -> int:
        return len(self._published)
