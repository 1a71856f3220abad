"""Small text helpers: normalising what STT heard, names, yes/no, and making mail speakable."""

from __future__ import annotations

import re

# The name key and the matching form live on the assistant floor (``assistant forget`` needs them too).
from assistant.names import name_key, normalise

_SPACE = re.compile(r"\s+")


def display_name(name: str) -> str:
    """How to say an enrolled identity: ``alice_smith`` -> ``Alice Smith``; keeps deliberate capitals."""
    words = name.replace("_", " ").strip().split()
    return " ".join(w if any(c.isupper() for c in w) else w.capitalize() for w in words)


def same_person(identity: str, recipient: str) -> bool:
    """An identity matches a recipient name when the names, or the first names, agree."""
    a, b = name_key(identity), name_key(recipient)
    if not a or not b:
        return False
    return a == b or a.split()[0] == b or b.split()[0] == a


_YES = {"yes", "yeah", "yep", "yup", "sure", "ok", "okay", "correct", "right", "affirmative", "please"}
_YES_PHRASES = ("send it", "do it", "go ahead", "please do", "that's right", "that is right")
_NO = {"no", "nope", "nah", "cancel", "don't", "dont", "stop", "wrong", "negative"}
_NO_PHRASES = ("never mind", "nevermind", "do not", "forget it")
# An utterance that opens like a question is a new question, not an answer ("where are the toilets please").
_QUESTION_START = {"what", "where", "when", "who", "whom", "whose", "which", "why", "how", "is", "are", "can", "could"}


def yes_or_no(text: str) -> bool | None:
    """``True`` for a yes, ``False`` for a no, ``None`` when the answer is neither (or both)."""
    norm = normalise(text)
    words = set(norm.split())
    if norm.split(" ", 1)[0] in _QUESTION_START:
        return None
    no = bool(words & _NO) or any(p in norm for p in _NO_PHRASES)
    yes = bool(words & _YES) or any(p in norm for p in _YES_PHRASES)
    if yes == no:
        return None
    return yes


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_URL = re.compile(r"https?://\S+|www\.\S+")


def speakable(text: str, limit: int) -> str:
    """Mail text fit to be read aloud: no quoted replies, signature, URLs or control characters; at most ``limit`` characters."""
    lines = []
    for line in _CONTROL.sub(" ", text).splitlines():
        if line.rstrip() in ("--", "-- "):
            break  # signature separator
        if line.lstrip().startswith(">"):
            continue  # quoted reply
        lines.append(line)
    body = _SPACE.sub(" ", _URL.sub("(link)", " ".join(lines))).strip()
    return clip(body, limit)


def clip(text: str, limit: int) -> str:
    """Cut ``text`` at a word boundary before ``limit`` characters, saying that something was left out."""
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0].rstrip(",;:")
    return f"{cut} ... The rest is in the email."
