"""Brain messages: replies and per-turn latency traces."""

from __future__ import annotations

from .base import Message, message


@message("brain.reply")
class Reply(Message, frozen=True):
    """The brain's answer to a turn (the text it sent to the voice)."""

    text: str
    """Reply text."""
    skill: str = ""
    """Skill that answered."""
    person: str = ""
    """Who it was for, when known."""
    track_id: int = -1
    """Camera track of the visitor it was for (the renderer looks at them), -1 when nobody in particular."""


@message("brain.trace")
class TurnTrace(Message, frozen=True):
    """Latency trace of one turn; times are monotonic ns, 0 when the stage did not happen."""

    speech_end_ns: int = 0
    """End of the visitor's speech."""
    transcript_ns: int = 0
    """Final transcript published."""
    reply_ns: int = 0
    """Reply text decided."""
    first_sound_ns: int = 0
    """First sample of the reply left the speaker."""
    first_mouth_ns: int = 0
    """First moving mouth frame shown."""
