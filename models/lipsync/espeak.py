"""espeak-ng for lip-sync training data: audio plus per-phoneme timings from its phoneme events.

A thin adapter over the one binding, ``assistant.espeak`` (the library bundled by
``espeakng-loader``: no apt package needed), returning what the data makers want: float audio,
the sample rate, and phonemes in espeak mnemonics without the language-switch marks.
"""

from __future__ import annotations

import logging

import numpy as np

from assistant import espeak

log = logging.getLogger(__name__)


class Espeak:
    """``say(text, voice, rate, pitch)`` -> (float32 pcm, sample_rate, phonemes in espeak mnemonics)."""

    def __init__(self) -> None:
        self._lib = espeak.load()
        self.sample_rate = self._lib.sample_rate

    def say(self, text: str, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50):
        try:
            speech = espeak.speak(self._lib, text, voice, rate_wpm=rate, pitch=pitch, pitch_range=pitch_range, volume=100)
        except espeak.EspeakError as exc:
            if exc.permanent:
                raise ValueError(f"espeak-ng has no voice {voice!r}") from None
            raise
        # "(en)" and the like mark a language switch, not a sound.
        marks = [(label, start) for label, start in speech.marks if not label.startswith("(")]
        pcm = speech.pcm.astype(np.float32) / 32768
        return pcm, speech.sample_rate, espeak.phonemes(marks, len(pcm), speech.sample_rate)
