"""Text -> normalised audio: the failover chain, the cache and loudness in one call.

This is what the voice service calls for each sentence. It looks in the cache for each engine
the chain would try (in order, skipping engines in back-off), synthesises on a miss, normalises
loudness and stores the result, and reports which engine spoke and which failed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Iterable

from .cache import AudioCache
from assistant.config.schema import VoiceLoudnessSettings

from .loudness import normalize, variant
from .tts.base import Synthesis, TtsEngine, TtsError
from .tts.failover import FailoverChain, Spoken

log = logging.getLogger(__name__)


class Synthesizer:
    """Failover chain + cache + loudness. Thread-safe (its parts are)."""

    def __init__(self, chain: FailoverChain, cache: AudioCache | None = None,
                 loudness: VoiceLoudnessSettings = VoiceLoudnessSettings()) -> None:
        self.chain = chain
        self.cache = cache
        self.loudness = loudness
        self._variant = variant(loudness)

    def speak(self, text: str, lang: str = "", voice: str = "", *, private: bool = False) -> Spoken:
        """Audio for one sentence; ``TtsError`` when no engine can speak it. ``private``: not cached."""
        lookup = None
        if self.cache is not None and not private:
            cache = self.cache

            def lookup(engine: TtsEngine) -> Synthesis | None:
                try:
                    vid = engine.voice_id(lang, voice)
                except TtsError:
                    return None  # the engine cannot speak this; the chain will report why
                return cache.get(engine.name, vid, lang, text, self._variant)

        spoken = self.chain.synthesize(text, lang, voice, lookup=lookup)
        if spoken.cached:
            return spoken
        s = spoken.synthesis
        spoken.synthesis = replace(s, pcm=normalize(s.pcm, s.sample_rate, self.loudness))
        if self.cache is not None and not private:
            self.cache.put(spoken.synthesis, lang, text, self._variant)
        return spoken

    def prewarm(self, phrases: Iterable[str], lang: str = "", voice: str = "") -> int:
        """Put common phrases (greetings, "one moment please") in the cache ahead of time."""
        if self.cache is None:
            return 0
        return self.cache.prewarm(phrases, lambda p: self.speak(p, lang, voice))
