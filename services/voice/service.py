"""The voice service: ``voice.say`` -> speech on the speaker, announced and clocked on the bus.

A thin handler over ``SpeechScheduler`` (queueing, streaming, ``play_at``), the ``Synthesizer``
(failover, cache, loudness) and the ``Player`` on the configured speaker; see those modules.
"""

from __future__ import annotations

import logging

from assistant.messages import Message, Received, Say, Stop
from assistant.service import Service, on

from .factory import build_engines, build_synthesizer, open_speaker
from .player import Player
from .scheduler import SchedulerSettings, SpeechScheduler

log = logging.getLogger(__name__)


class VoiceService(Service):
    """Text to speech, the speaker and the playback clock."""

    name = "voice"

    def setup(self) -> None:
        cfg = self.config.voice
        # The speaker first: a device that cannot work is a setup error to report at once, not
        # after loading the voices (Piper takes seconds).
        self.speaker = open_speaker(cfg.speaker)
        engines = build_engines(cfg)
        for engine in engines:
            if engine.name == "espeak-ng":
                engine.synthesize("Ready.")  # loads the voice now, not on the first reply
            elif engine.name == "piper":
                self._load_piper(engine)
        self.synth = build_synthesizer(cfg, engines)
        self.player = Player(self.speaker)
        self.scheduler = SpeechScheduler(self.synth, self.player, self._publish, SchedulerSettings(
            lang=cfg.lang, lead_s=cfg.lead_ms / 1000, announce_ahead_s=cfg.announce_ahead_s,
            gap_s=cfg.sentence_gap_ms / 1000, max_chars=cfg.max_chars, synth_ahead=cfg.synth_ahead,
            max_text_chars=cfg.max_text_chars))
        self.every(cfg.playback_period_s, self._report_playback)
        self.every(0.1, self._watch_speaker)
        if cfg.loudness.enabled:
            from . import loudness

            self.submit(loudness.preload)
        if cfg.cache.prewarm and self.synth.cache is not None:
            self.submit(self.synth.prewarm, cfg.cache.prewarm, cfg.lang, then=self._prewarmed)

    def _load_piper(self, engine) -> None:
        """Load the default Piper voice now (~1-2 s) and run it once, so the first reply does not pay
        for it. A missing or broken voice is logged (file and fix) and the chain speaks without it."""
        from .tts.base import TtsError

        try:
            files = engine.load()
            engine.synthesize("Ready.")
        except TtsError as exc:
            self.count("piper_unavailable")
            log.error("voice.piper: %s; speaking with the other engines meanwhile", exc)
        else:
            log.info("Piper voice %s ready", files.name)

    def _prewarmed(self, future) -> None:
        if future.exception() is not None:
            log.warning("prewarming the cache failed: %s", future.exception())
            return
        self.count("prewarmed", future.result())
        log.info("prewarmed %d phrase(s)", future.result())

    def _publish(self, msg: Message, turn: str) -> None:
        self.publish(msg, turn=turn)

    @on(Say)
    def handle_say(self, rx: Received) -> None:
        self.count("say")
        self.scheduler.say(rx.msg, rx.header.turn)

    @on(Stop)
    def handle_stop(self, rx: Received) -> None:
        self.count("stop")
        self.scheduler.stop(rx.msg.reason or "voice.stop")

    def _report_playback(self) -> None:
        report = self.scheduler.playback()
        if report is not None:
            self.publish(report[0], turn=report[1])

    def _watch_speaker(self) -> None:
        """A speaker that vanishes stops what was playing (reported interrupted) and fails new
        replies at once, rather than playing them stale when it comes back."""
        available, lost = self.speaker.available, bool(self.scheduler.unavailable)
        if not available and not lost:
            self.count("speaker_lost")
            log.error("no speaker: playback stopped; replies fail until it is back")
            self.scheduler.unavailable = "the speaker is gone (unplugged?); nothing can be played"
            self.scheduler.stop("speaker lost")
            self._set_state("degraded", "no speaker")  # status and the status page show it
        elif available and lost:
            self.scheduler.unavailable = ""
            self._set_state("ready")
            log.warning("speaker back: replies play again")

    def heartbeat_counters(self) -> dict[str, float]:
        cache = self.synth.cache
        extra = {"underruns": self.speaker.underruns, "speaker_reopened": self.speaker.reopened,
                 "speaker_available": int(self.speaker.available)}
        if cache is not None:
            extra.update(cache_hits=cache.hits, cache_misses=cache.misses)
        extra.update({f"spoke_{name}": n for name, n in self.scheduler.engines_used.items()})
        return {**self.counters, **extra}

    def teardown(self) -> None:
        if hasattr(self, "scheduler"):
            self.scheduler.close()
        if hasattr(self, "player"):
            self.player.close()
        elif hasattr(self, "speaker"):
            self.speaker.close()


main = VoiceService.main

if __name__ == "__main__":
    raise SystemExit(main())
