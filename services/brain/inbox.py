"""Who a received mail is for, and how it is read aloud.

A mail is personal when it names a recipient: a plus tag in a recipient address
(``kiosk+alice@example.org``), a subject that starts with ``For Alice:`` (or ``To``/``Attn``), or a
recipient address that is in the address book. Anything else is an announcement for whoever is
at the kiosk.
"""

from __future__ import annotations

import re

from .mailstore import StoredMail
from .skills import AddressBook, join_names
from .text import clip, name_key, speakable

_PLUS = re.compile(r"^[^@+\s]+\+(?P<tag>[^@\s]+)@")
_SUBJECT_FOR = re.compile(r"^\s*(?:for|to|attn|attention)\s*:?\s+(?P<name>[A-Za-z][A-Za-z'. _-]{0,40}?)\s*[:,–-]\s*(?P<rest>.*)$", re.I)


def recipient_of(to: list[str], subject: str, book: AddressBook) -> tuple[str, str]:
    """``(recipient name key or "", subject without the "For NAME:" prefix)``."""
    for addr in to:
        m = _PLUS.match(addr.strip().lower())
        if m:
            return name_key(m.group("tag").replace(".", " ")), subject
    m = _SUBJECT_FOR.match(subject)
    if m and len(m.group("name").split()) <= 3:
        return name_key(m.group("name")), m.group("rest").strip() or subject
    for addr in to:
        key = book.name_for_address(addr)
        if key:
            return key, subject
    return "", subject


def _sender(mail: StoredMail) -> str:
    return mail.sender_name.strip() or mail.sender.split("@")[0] or "someone"


def read_out(mails: list[StoredMail], limit: int, most: int = 3) -> str:
    """Several personal messages as one spoken text (the first ``most`` of them)."""
    shown = mails[:most]
    parts = []
    if len(mails) == 1:
        parts.append(f"You have a message from {_sender(mails[0])}.")
    else:
        parts.append(f"You have {len(mails)} messages, from {join_names(sorted({_sender(m) for m in mails}))}.")
    for m in shown:
        about = f" about {clip(m.subject.strip(), 80)}" if m.subject.strip() else ""
        lead = f"From {_sender(m)}{about}: " if len(mails) > 1 else (f"It's about {clip(m.subject.strip(), 80)}. " if about else "")
        parts.append(lead + (speakable(m.body, limit) or "The message is empty."))
    if len(mails) > most:
        parts.append(f"There are {len(mails) - most} more; ask me again to hear them.")
    return " ".join(parts)


def announce(mail: StoredMail, limit: int) -> str:
    subject = mail.subject.strip()
    head = f"An announcement from {_sender(mail)}" + (f": {clip(subject, 100)}." if subject else ".")
    body = speakable(mail.body, limit)
    return f"{head} {body}".strip()
