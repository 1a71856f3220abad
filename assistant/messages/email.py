"""Email messages: mail received, acknowledged, to send, sent or failed."""

from __future__ import annotations

from .base import Message, message


@message("email.received")
class EmailReceived(Message, frozen=True):
    """An authorised mail arrived; it stays unhandled until ``email.ack``."""

    mail_id: str
    """Stable id of this mail (Message-ID, or a hash when missing)."""
    sender: str
    """Sender address (lower case)."""
    sender_name: str
    """Display name of the sender."""
    subject: str
    """Subject line."""
    text: str
    """Plain text body (HTML turned into text)."""
    to: list[str] = []
    """Recipient addresses."""
    received_ns: int = 0
    """When the service saw it."""
    attachments: int = 0
    """Attachments ignored."""
    truncated: bool = False
    """The body was longer than the limit and was cut."""
    message_id: str = ""
    """The mail's own Message-ID header (for ``email.send`` ``in_reply_to``); empty when it had none."""
    delivery: int = 1
    """How often this mail has been published: above 1 after a restart or a lost ack. Act once per ``mail_id``."""


@message("email.ack")
class EmailAck(Message, frozen=True):
    """The brain took responsibility for a received mail; it may now be marked handled."""

    mail_id: str
    """The mail."""


@message("email.send")
class EmailSend(Message, frozen=True):
    """Send a mail."""

    send_id: str
    """Caller's id, echoed in ``email.sent`` / ``email.failed``; sending is idempotent per id."""
    to: list[str]
    """Recipients."""
    subject: str
    """Subject."""
    body: str
    """Plain text body."""
    in_reply_to: str = ""
    """Message-ID this replies to."""


@message("email.sent")
class EmailSent(Message, frozen=True):
    """A mail from the outbox was accepted by the SMTP server."""

    send_id: str
    """The request."""
    message_id: str = ""
    """Message-ID of the sent mail."""


@message("email.failed")
class EmailFailed(Message, frozen=True):
    """A mail could not be sent (after retries, or permanently)."""

    send_id: str
    """The request."""
    error: str
    """What went wrong."""
    permanent: bool = False
    """No more retries will happen."""
