"""Voice messages: what to say, the audio that will play and the playback clock."""

from __future__ import annotations

import time
from typing import Literal

import msgspec

from .base import Message, message

#: Longest utterance a message may carry, and how far ahead its play time may be.
MAX_UTTERANCE_S = 120.0
MAX_PLAY_AHEAD_S = 300.0
#: Longest hold a ``voice.say`` may ask for before its first sound (``not_before_ns``).
MAX_HOLD_S = 10.0


class Phoneme(msgspec.Struct, frozen=True, array_like=True):
    """One phoneme of an utterance with its time from the start of the utterance's audio."""

    label: str
    """Phoneme symbol in the engine's alphabet (see ``Utterance.phoneme_alphabet``)."""
    start_s: float
    """Start time in seconds from the first sample."""
    dur_s: float
    """Duration in seconds."""


@message("voice.say")
class Say(Message, frozen=True):
    """Speak ``text``."""

    def problem(self) -> str | None:
        # A hold far in the future would keep the voice (and everything queued after it) silent.
        if self.not_before_ns:
            ahead = (self.not_before_ns - time.monotonic_ns()) / 1e9
            if ahead > MAX_HOLD_S:
                return f"not_before is {ahead:.0f} s ahead, at most {MAX_HOLD_S:.0f} s"
        return None

    text: str
    """What to say; may be several sentences."""
    lang: str = ""
    """BCP-47-ish language code (``en``, ``cs``); empty means the configured default."""
    voice: str = ""
    """Engine-specific voice name; empty means the configured default."""
    interrupt: bool = False
    """Stop whatever is playing first (otherwise queued after it)."""
    say_id: str = ""
    """Caller's id for this request, echoed in the resulting utterances and ``voice.done``."""
    private: bool = False
    """Personal content (a visitor's mail, a message they dictate): never kept in the audio cache."""
    not_before_ns: int = 0
    """``monotonic_ns`` before which no sound of this request leaves the speaker (0: as soon as it is
    ready). The brain sets it to the visitor's end of speech plus its answer gap: speech that resumes
    before then stops the answer unheard (``voice.stop``) and the whole sentence is answered instead."""


@message("voice.stop")
class Stop(Message, frozen=True):
    """Silence the voice now (barge-in) and drop queued speech."""

    reason: str = ""
    """Why, for the logs (``barge-in``, ``operator``...)."""


@message("voice.utterance")
class Utterance(Message, frozen=True):
    """Audio about to be played, announced before it plays so the renderer can prepare."""

    PAYLOADS = ("pcm",)
    PAYLOAD_MAX = {"pcm": int(MAX_UTTERANCE_S * 48_000 * 2)}

    def problem(self) -> str | None:
        # What a receiver would hold on to: too much audio for its rate, or a play time so far
        # ahead that it stays queued. (An odd byte count or a zero rate is the services' to
        # report: they count those as bad utterances.)
        if self.sample_rate > 0:
            seconds = len(self.pcm) / 2 / self.sample_rate
            if seconds > MAX_UTTERANCE_S:
                return f"{seconds:.0f} s of audio at {self.sample_rate} Hz, at most {MAX_UTTERANCE_S:.0f} s"
        elif len(self.pcm) > MAX_UTTERANCE_S * 48_000 * 2:
            return f"{len(self.pcm)} bytes of audio"
        ahead = (self.play_at_ns - time.monotonic_ns()) / 1e9
        if ahead > MAX_PLAY_AHEAD_S:
            return f"play_at is {ahead:.0f} s ahead, at most {MAX_PLAY_AHEAD_S:.0f} s"
        return None

    utterance_id: str
    """Unique id of this utterance (one sentence of a reply)."""
    text: str
    """The text spoken."""
    sample_rate: int
    """Samples per second of ``pcm``."""
    play_at_ns: int
    """``monotonic_ns`` at which the first sample leaves the speaker."""
    engine: str
    """TTS engine that produced it (``gtts``, ``espeak-ng``...)."""
    pcm: bytes = b""
    """Mono signed 16-bit little-endian PCM."""
    phonemes: list[Phoneme] = []
    """Per-phoneme timings when the engine knows them."""
    phoneme_alphabet: str = ""
    """Alphabet of ``phonemes`` (``espeak``, ``arpabet``); empty when there are none."""
    say_id: str = ""
    """The ``voice.say`` request this came from."""
    index: int = 0
    """Position of this utterance in its reply (0 = first sentence)."""
    last: bool = True
    """Whether this is the last utterance of its reply."""


@message("voice.playback")
class Playback(Message, frozen=True):
    """Playback clock: which sample left the speaker when."""

    utterance_id: str
    """The utterance playing."""
    position_samples: int
    """Samples of the utterance that have left the speaker at ``at_ns``."""
    at_ns: int
    """``monotonic_ns`` of that position."""
    sample_rate: int
    """Sample rate of the utterance."""


@message("voice.done")
class Done(Message, frozen=True):
    """An utterance finished playing, or was interrupted."""

    utterance_id: str
    """The utterance; empty when the rest of a request was dropped before it was announced
    (``interrupted``) or could not be spoken (``failed``, after a ``voice.error``). Every
    ``voice.say`` ends with exactly one ``voice.done`` whose ``last`` is true."""
    status: Literal["finished", "interrupted", "failed"]
    """How it ended."""
    say_id: str = ""
    """The ``voice.say`` request it belonged to."""
    last: bool = True
    """Whether this was the last utterance of its reply."""
    detail: str = ""
    """Reason when interrupted or failed."""


@message("voice.error")
class VoiceError(Message, frozen=True):
    """A ``voice.say`` could not be spoken (every engine failed, bad input)."""

    say_id: str
    """The request that failed."""
    error: str
    """One clear line saying what went wrong."""


@message("voice.engine")
class EngineUsed(Message, frozen=True):
    """Which engine spoke a request, and whether a fallback was needed."""

    say_id: str
    """The request."""
    engine: str
    """Engine that produced the audio."""
    failed: list[str] = []
    """Engines tried first that failed or timed out, with their reasons."""
    cached: bool = False
    """Audio came from the cache."""
