"""The STT engine interface: a streaming recogniser fed one utterance at a time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from assistant.errors import SetupError


class EngineError(SetupError):
    """The engine cannot be loaded; the message names what is missing and how to install it."""


@dataclass(frozen=True)
class WordTime:
    """A recognised word, timed from the first sample fed in this utterance."""

    text: str
    start_s: float
    end_s: float
    confidence: float = 1.0


@dataclass(frozen=True)
class Result:
    """The final hypothesis of one utterance."""

    text: str
    confidence: float
    words: list[WordTime] = field(default_factory=list)


class SttEngine:
    """Streaming recogniser. Not thread-safe: one thread drives it.

    ``start()``, then ``feed()`` 16 kHz int16 mono audio as it arrives (``partial()`` any time),
    then ``finish()`` for the final result. ``set_phrases`` between utterances.
    """

    name = "stt"
    lang = ""

    @classmethod
    def from_settings(cls, settings) -> "SttEngine":
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def feed(self, pcm: np.ndarray) -> None:
        raise NotImplementedError

    def carry(self, pcm: np.ndarray) -> None:
        """Right after ``start()``: the earlier part of a turn that goes on after a pause (its final
        was published), so that the next ``finish()`` hears the whole turn. Engines whose partials
        are costly may keep it out of them."""
        self.feed(pcm)

    def partial(self) -> str:
        """Best hypothesis so far (may change)."""
        return ""

    def finish(self) -> Result:
        raise NotImplementedError

    def set_phrases(self, phrases: list[str]) -> None:
        """Expected phrases of the kiosk's domain (from the brain); engines that can't use them ignore them."""

    def speculate(self) -> None:
        """A pause began and the utterance may be over: an engine with a costly final pass may start it
        now on the audio so far. ``finish()`` uses that result unless ``resume()`` came in between
        (only silence is fed after a ``speculate()`` that stands)."""

    def resume(self) -> None:
        """Speech went on after ``speculate()``."""

    def peek(self, timeout: float | None = None) -> Result | None:
        """The result of the standing ``speculate()`` (waiting up to ``timeout`` s for it), or ``None`` when
        the engine has none (or it is not ready in time)."""
        return None

    def speculating(self) -> bool:
        """A ``speculate()`` decode is still running (``peek`` would have to wait for it)."""
        return False

    def close(self) -> None:
        """Release worker threads and models."""

    def transcribe(self, pcm: np.ndarray, chunk: int = 480) -> Result:
        """Whole-buffer convenience: start, feed in chunks, finish."""
        self.start()
        for i in range(0, len(pcm), chunk):
            self.feed(pcm[i:i + chunk])
        return self.finish()
