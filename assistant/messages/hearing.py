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
    """Why the turn ended: ``silence`` (a finished sentence), ``doubt_pause`` (a maybe finished one, waited for briefly), ``long_pause`` (an unfinished one, waited for), ``max_length``..."""
    rejected: str = ""
    """Set (``no_speech``, ``low_logprob``, ``repetition``, ``stock_phrase``) when the final pass judged the text invented
    from noise, breath or silence; ``text`` is then empty."""
    end_tentative: bool = False
    """The end of turn was not sure: ended at the first silence (its words and Smart Turn say finished) although the
    voice had not fallen there, or after the short wait for a sentence one signal doubted (``end_reason`` ``doubt_pause``).
    The visitor may still go on, so the brain holds its answer for ``brain.answer_gap_tentative_ms`` instead of
    ``answer_gap_ms`` after the end of speech."""


@message("hearing.phrases")
class Phrases(Message, frozen=True):
    """Phrases the STT should expect (domain vocabulary, from the brain)."""

    phrases: list[str]
    """Expected phrases or words."""


@message("hearing.activity")
class Activity(Message, frozen=True):
    """The microphone's speech activity at a low rate: short frames' level and VAD verdict, batched.

    One message carries ``len(energy_db)`` consecutive frames of ``frame_ms`` (about 100-300 ms in all),
    so the camera can line mouth motion up with the sound without the audio itself crossing the bus.
    """

    t0_ns: int
    """Monotonic time of the first sample of the first frame (the microphone's clock, like ``Speech.at_ns``)."""
    frame_ms: int
    """Length of each frame in milliseconds (the VAD's frame: 10, 20 or 30)."""
    energy_db: list[float]
    """Mean power of each frame in dB relative to one int16 step squared (silence ~0-30, speech ~50-80)."""
    voiced: list[bool]
    """The VAD's verdict per frame (level-gated, as for the speech edges)."""

    def problem(self) -> str | None:
        if not 1 <= self.frame_ms <= 100:
            return f"frame_ms {self.frame_ms} is outside 1..100"
        if len(self.energy_db) != len(self.voiced):
            return f"{len(self.energy_db)} energies but {len(self.voiced)} VAD flags"
        if not 1 <= len(self.energy_db) <= 200:
            return f"{len(self.energy_db)} frames in one message; expected 1..200"
        if any(not -10.0 <= e <= 200.0 for e in self.energy_db):
            return "an energy is outside -10..200 dB"
        return None
