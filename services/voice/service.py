"""The voice service: ``voice.say`` -> speech on the speaker, announced and clocked on the bus.

A thin handler over the engines that ``factory.build`` makes from the ``voice`` section:
``SpeechScheduler`` (queueing, streaming, ``play_at``), the ``Synthesizer`` (failover, cache,
loudness) and the ``Player`` on the configured speaker; see those modules. Their real-time loops
run on the service's workers and they sit on its exit stack, so shutdown stops, closes and joins
them in one place.
"""

from __future__ import annotations

import logging

from assistant.messages import Message, Received, Say, Stop
from assistant.service import Service, on

from .factory import build

log = logging.getLogger(__name__)


class VoiceService(Service):
    """Text to speech, the speaker and the playback clock."""

    name = "voice"

    def setup(self) -> None:
        cfg = self.config.voice
        self.voice = build(cfg, self._publish, self.workers, self.resources)
        self.every(cfg.playback_period_s, self._report_playback)
        self.every(0.1, self._watch_speaker)
        if cfg.loudness.enabled:
            from . import loudness

            self.submit(loudness.preload)
        if cfg.cache.prewarm and self.voice.synth.cache is not None:
            self.submit(self.voice.synth.prewarm, cfg.cache.prewarm, cfg.lang, then=self._prewarmed)

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
        self.voice.scheduler.say(rx.msg, rx.header.turn)

    @on(Stop)
    def handle_stop(self, rx: Received) -> None:
        self.count("stop")
        self.voice.scheduler.stop(rx.msg.reason or "voice.stop")

    def _report_playback(self) -> None:
        report = self.voice.scheduler.playback()
        if report is not None:
            self.publish(report[0], turn=report[1])

    def _watch_speaker(self) -> None:
        change = self.voice.check_speaker()
        if change == "lost":
            self.count("speaker_lost")
            log.error("no speaker: playback stopped; replies fail until it is back")
            self._set_state("degraded", "no speaker")  # status and the status page show it
        elif change == "back":
            self._set_state("ready")
            log.warning("speaker back: replies play again")

    def heartbeat_counters(self) -> dict[str, float]:
        return {**self.counters, **self.voice.heartbeat()}


main = VoiceService.main

if __name__ == "__main__":
    raise SystemExit(main())
