"""Rule skills: what the visitor asked for (intent), the address book, and the fixed replies.

Questions that match no rule are "open": the knowledge base (by meaning), then the optional
chat endpoint, then the "I don't know, I can email someone" fallback answer them.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import datetime

from .text import display_name, name_key, normalise

# Phrases the STT should expect; the brain adds the address book names and knowledge questions.
PHRASES = [
    "what time is it", "what is the time", "what is the date", "what day is it today",
    "help", "what can you do", "send a message to", "saying", "any messages for me",
    "do i have any messages", "read my messages", "yes", "no", "cancel", "thank you", "goodbye", "hello",
]


@dataclass(frozen=True)
class Intent:
    kind: str
    """help, time, date, send, messages, hello, bye, thanks, or open (anything else)."""
    name: str = ""
    """Recipient named in a send request."""
    body: str = ""
    """Message text of a send request (may be empty: ask for it)."""


_SEND = re.compile(
    r"^(?:please |can you |could you |would you |i want to |i'd like to |i would like to )*"
    r"(?:send|write|leave|email|mail)(?: me)?(?: (?:a|an))?(?: (?:message|note|email|mail|text))? (?:to|for) "
    r"(?P<name>[a-z][a-z' ]*?)(?: (?:saying|that says|to say|which says|that|with) (?P<body>.+))?$"
)
_TELL = re.compile(r"^(?:please )?tell (?P<name>[a-z][a-z' ]*?) (?:that )(?P<body>.+)$")
_MESSAGES = re.compile(
    r"\b(?:any|new|my|have i got|do i have|are there|got)\b.*\b(?:messages?|mails?|emails?|post)\b"
    r"|\b(?:check|read)\b.*\b(?:messages?|mails?|emails?)\b"
)
_TIME = re.compile(r"\bwhat time\b|\bthe time\b|\btime is it\b|\bcurrent time\b")
_DATE = re.compile(r"\bwhat(?:'s| is)? (?:the )?(?:day|date)\b|\btoday'?s date\b|\bthe date\b|\bwhat day\b")
_HELP = re.compile(r"^(?:help|help me|i need help)$|\bwhat can you do\b|\bhow do(?:es)? (?:this|you) work\b|\bwhat do you do\b")
_HELLO = re.compile(r"^(?:hello|hi|hey|good (?:morning|afternoon|evening))(?: there)?(?: \w+)?$")
_BYE = re.compile(r"^(?:good ?bye|bye|bye bye|see you|see you later)(?: \w+)?$")
_THANKS = re.compile(r"^(?:thanks|thank you|cheers)(?: .*)?$")


def parse(text: str) -> Intent:
    """The intent of an utterance (already stripped of nothing: raw STT text is fine)."""
    norm = normalise(text)
    m = _SEND.match(norm) or _TELL.match(norm)
    if m:
        return Intent("send", m.group("name").strip(), (m.group("body") or "").strip())
    if _MESSAGES.search(norm):
        return Intent("messages")
    if _TIME.search(norm):
        return Intent("time")
    if _DATE.search(norm):
        return Intent("date")
    if _HELP.search(norm):
        return Intent("help")
    if _HELLO.match(norm):
        return Intent("hello")
    if _BYE.match(norm):
        return Intent("bye")
    if _THANKS.match(norm):
        return Intent("thanks")
    return Intent("open")


class AddressBook:
    """Names the kiosk may send mail to, from ``[brain.address_book]``; forgiving about STT spelling."""

    def __init__(self, entries: dict[str, str]) -> None:
        self.entries = {name_key(k): (display_name(k), v.strip()) for k, v in entries.items()}

    def find(self, spoken: str) -> tuple[str, str] | None:
        """``(display name, address)`` for a spoken name: exact, first name, or a close spelling."""
        key = name_key(spoken)
        if not key:
            return None
        if key in self.entries:
            return self.entries[key]
        firsts = {k.split()[0]: k for k in self.entries}
        if key in firsts:
            return self.entries[firsts[key]]
        close = difflib.get_close_matches(key, list(self.entries) + list(firsts), n=1, cutoff=0.75)
        if close:
            return self.entries[firsts.get(close[0], close[0])]
        return None

    def name_for_address(self, address: str) -> str:
        """Name key of an address in the book, or ``""``."""
        address = address.strip().lower()
        for key, (_, addr) in self.entries.items():
            if addr.lower() == address:
                return key
        return ""

    def names(self) -> list[str]:
        return [d for d, _ in self.entries.values()]


def say_time(now: datetime) -> str:
    hour = now.hour % 12 or 12
    return f"It's {hour}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}."


def say_date(now: datetime) -> str:
    day = now.day
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"Today is {now:%A}, the {day}{suffix} of {now:%B} {now.year}."


def say_help(examples: list[str], names: list[str]) -> str:
    ask = f" such as: {examples[0]}" if examples else ""
    send = f"Say: send a message to {names[0]} saying, and then your message." if names else ""
    return (
        f"You can ask me the time or the date, or ask about this place{ask}. "
        f"I can take a message for someone. {send} "
        "And if you have mail waiting, ask: any messages for me?"
    ).replace("  ", " ")


def join_names(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]
