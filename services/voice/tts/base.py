"""What every TTS engine returns, the engine protocol, and the one error type callers handle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from assistant.messages.voice import Phoneme


class TtsError(Exception):
    """Speech could not be produced; ``str(exc)`` is one clear line for ``voice.error``.

    ``permanent`` marks errors that another try with the same input cannot fix (empty text,
    unsupported language): the failover chain still tries the next engine, but does not put the
    engine into back-off for them, because the engine itself is fine.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class EngineUnavailable(TtsError):
    """The engine cannot be reached or loaded (no network, missing library)."""


@dataclass(frozen=True)
class Synthesis:
    """Audio for one piece of text, as an engine produced it."""

    pcm: np.ndarray
    """Mono int16 samples."""
    sample_rate: int
    """Samples per second of ``pcm``."""
    engine: str
    """Engine name (``espeak-ng``, ``gtts``)."""
    voice: str
    """Voice the engine used (``en``, ``mb-us2``, ``en/com`` for gTTS language/tld)."""
    phonemes: list[Phoneme] = field(default_factory=list)
    """Per-phoneme timings, empty when the engine does not know them."""
    alphabet: str = ""
    """Alphabet of ``phonemes`` (``espeak``, ``ipa``); empty when there are none."""

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return len(self.pcm) / self.sample_rate


@runtime_checkable
class TtsEngine(Protocol):
    """A text-to-speech engine. Implementations must be safe to call from a worker thread."""

    name: str
    """Short engine name used in reports, the cache key and ``voice.engine``."""

    def voice_id(self, lang: str, voice: str) -> str:
        """The concrete voice ``synthesize`` would use for ``lang``/``voice`` (cache key part).

        Raises ``TtsError(permanent=True)`` when the language or voice is not supported.
        """
        ...

    def synthesize(self, text: str, lang: str = "", voice: str = "") -> Synthesis:
        """Speak ``text``; raises ``TtsError`` on failure (never returns empty audio)."""
        ...


def check_text(text: str) -> str:
    """Strip ``text`` and refuse text with nothing to say, with an error that says so."""
    stripped = text.strip()
    if not stripped or not any(ch.isalnum() for ch in stripped):
        raise TtsError("nothing to say: the text is empty or has no letters or digits", permanent=True)
    return stripped
