"""Hearing messages: speech activity, partial and final transcripts."""

from __future__ import annotations

from typing import Literal

import msgspec

from .base import Message, message


class Word(msgspec.Struct, frozen=True, array_like=True):
    """A recognised word with its times (monotonic ns) and confidence."""

    text: str
    """The word."""
    start_ns: int
    """When the word started."""
    end_ns: int
    """When the word ended."""
    confidence: float = 1.0
    """Engine confidence in [0, 1]."""


@message("hearing.speech")
class Speech(Message, frozen=True):
    """Voice activity started or ended (the turn id starts here)."""

    event: Literal["started", "ended"]
    """Which edge."""
    at_ns: int
    """Monotonic time of the speech edge in the audio (not of detection)."""
    during_playback: bool = False
    """The assistant was speaking at the time (a barge-in candidate)."""


@message("hearing.partial")
class Partial(Message, frozen=True):
    """Interim hypothesis while the visitor speaks."""

    text: str
    """Text so far."""
    engine: str
    """STT engine."""


@message("hearing.transcript")
class Transcript(Message, frozen=True):
    """Final transcript of one utterance."""

    text: str
    """Recognised text, empty when nothing was understood."""
    confidence: float
    """Utterance confidence in [0, 1]."""
    engine: str
    """STT engine."""
    speech_start_ns: int
    """Start of the speech segment."""
    speech_end_ns: int
    """End of the speech segment."""
    words: list[Word] = []
    """Words with times."""
    lang: str = ""
    """Language of the model."""
    partial_engine: str = ""
    """Engine of this turn's ``hearing.partial`` captions when it is not ``engine`` (Whisper's final pass: pocketsphinx)."""
    end_reason: str = ""
    """Why the turn ended: ``silence`` (a finished sentence), ``long_pause`` (an unfinished one, waited for), ``max_length``..."""
    rejected: str = ""
    """Set (``no_speech``, ``low_logprob``, ``repetition``, ``stock_phrase``) when the final pass judged the text invented
    from noise, breath or silence; ``text`` is then empty."""


@message("hearing.phrases")
class Phrases(Message, frozen=True):
    """Phrases the STT should expect (domain vocabulary, from the brain)."""

    phrases: list[str]
    """Expected phrases or words."""
