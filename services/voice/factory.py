"""The voice's build step: the ``voice`` config section -> speaker, engines, player, scheduler (no bus here).

Kept apart from the service so tests and the benchmark build exactly what the service runs. Every
engine takes its own config section (``voice.espeak``, ``voice.failover``...), not a copy of it.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from assistant import paths
from assistant.config.schema import VoiceSettings, VoiceSpeakerSettings
from assistant.errors import SetupError
from assistant.workers import Workers
from hardware.speaker import Speaker

from .cache import AudioCache
from .player import Player
from .scheduler import Publish, SpeechScheduler
from .synthesizer import Synthesizer
from .tts.base import TtsEngine, TtsError
from .tts.failover import FailoverChain

log = logging.getLogger(__name__)


def _deadline(cfg: VoiceSettings, name: str) -> float:
    """The failover deadline engine ``name`` gets (the last engine has the longer one)."""
    f = cfg.failover
    return f.last_timeout_s if cfg.engines[-1] == name else f.timeout_s


def build_engines(cfg: VoiceSettings) -> list[TtsEngine]:
    """The engines of ``cfg.engines``, in chain order."""
    engines: list[TtsEngine] = []
    for name in cfg.engines:
        if name == "espeak-ng":
            from .tts.espeak import EspeakEngine

            engines.append(EspeakEngine(cfg.espeak, lang=cfg.lang))
        elif name == "piper":
            from .tts.piper_engine import PiperEngine

            try:
                engines.append(PiperEngine(cfg.piper, lang=cfg.lang, deadline_s=_deadline(cfg, name)))
            except ImportError as exc:  # the kiosk keeps speaking with the rest of the chain
                log.error("voice.engines names piper but %s: speaking without it", exc)
        elif name == "gtts":
            from .tts.gtts_engine import GttsEngine

            engines.append(GttsEngine(cfg.gtts, lang=cfg.lang))
        else:  # the config schema only lets the names above through
            raise ValueError(f"unknown TTS engine {name!r}")
    if not engines:
        raise SetupError(f"voice.engines = {list(cfg.engines)}: none of them is installed; add espeak-ng "
                         "or install piper-tts (make setup)")
    return engines


def build_synthesizer(cfg: VoiceSettings, engines: list[TtsEngine] | None = None,
                      workers: Workers | None = None) -> Synthesizer:
    """Failover chain + cache + loudness as configured."""
    chain = FailoverChain(engines if engines is not None else build_engines(cfg), cfg.failover, workers=workers)
    cache = None
    if cfg.cache.max_bytes > 0:
        folder = paths.voice_cache_dir(cfg.cache.directory)
        try:
            cache = AudioCache(folder, cfg.cache.max_bytes)
        except OSError as exc:  # the voice works without it, only slower on repeated phrases
            log.error("voice.cache.directory: cannot use %s (%s); speaking without the audio cache", folder, exc.strerror or exc)
        else:
            log.info("audio cache in %s: %d entries, %.1f MiB", folder, len(cache), cache.total_bytes / 2**20)
    return Synthesizer(chain, cache, cfg.loudness)


def open_speaker(cfg: VoiceSpeakerSettings):
    """The configured speaker (not started yet: the ``Player`` starts it)."""
    if cfg.kind == "wav":
        from hardware.speaker import WavSinkSpeaker

        path = Path(cfg.wav_path) if cfg.wav_path else Path(tempfile.gettempdir()) / "assistant-voice.wav"
        log.info("speaker: WAV twin %s at %d Hz", path, cfg.sample_rate)
        try:
            return WavSinkSpeaker(path, sample_rate=cfg.sample_rate, block_frames=cfg.block_frames,
                                  latency_s=cfg.wav_latency_s, device_node=cfg.wav_device_node or None)
        except (OSError, RuntimeError) as exc:  # soundfile raises LibsndfileError (a RuntimeError)
            raise SetupError(f"voice.speaker.wav_path: cannot write the WAV twin's recording to {path} ({exc}); "
                             "point it at a writable file") from None
    from hardware.pyaudio_speaker import PyAudioSpeaker

    device = cfg.device if cfg.device != "" else None
    return PyAudioSpeaker(device=device, sample_rate=cfg.sample_rate, block_frames=cfg.block_frames,
                          reopen_after_s=cfg.reopen_after_s)


def load_voices(engines: list[TtsEngine]) -> list[str]:
    """Load the voices now and run each once, so the first reply does not pay for it (Piper: ~1-2 s).

    A missing or broken Piper voice is logged (file and fix) and the chain speaks without it;
    returns the names of the engines that could not load.
    """
    unavailable = []
    for engine in engines:
        if engine.name == "espeak-ng":
            engine.synthesize("Ready.")
        elif engine.name == "piper":
            try:
                files = engine.load()  # type: ignore[attr-defined]
                engine.synthesize("Ready.")
            except TtsError as exc:
                unavailable.append(engine.name)
                log.error("voice.piper: %s; speaking with the other engines meanwhile", exc)
            else:
                log.info("Piper voice %s ready", files.name)
    return unavailable


@dataclass
class Voice:
    """The voice's engines, built from ``voice`` by ``build``: what the service calls."""

    speaker: Speaker
    synth: Synthesizer
    player: Player
    scheduler: SpeechScheduler
    counters: dict[str, float] = field(default_factory=dict)
    """Start-up facts for the heartbeat (``piper_unavailable``)."""

    def check_speaker(self) -> str:
        """``lost`` when the speaker just vanished (what played is stopped, new replies fail at once
        rather than play stale when it is back), ``back`` when it just returned, else ``""``."""
        available, lost = self.speaker.available, bool(self.scheduler.unavailable)
        if not available and not lost:
            self.scheduler.unavailable = "the speaker is gone (unplugged?); nothing can be played"
            self.scheduler.stop("speaker lost")
            return "lost"
        if available and lost:
            self.scheduler.unavailable = ""
            return "back"
        return ""

    def heartbeat(self) -> dict[str, float]:
        cache = self.synth.cache
        out = {**self.counters, "underruns": self.speaker.underruns, "speaker_reopened": self.speaker.reopened,
               "speaker_available": int(self.speaker.available)}
        if cache is not None:
            out.update(cache_hits=cache.hits, cache_misses=cache.misses)
        out.update({f"spoke_{name}": n for name, n in self.scheduler.engines_used.items()})
        return out


def build(cfg: VoiceSettings, publish: Publish, workers: Workers, resources: contextlib.ExitStack) -> Voice:
    """Speaker, engines, player and scheduler from ``cfg``; each goes on ``resources`` as it opens.

    ``publish(message, turn)`` is called from the scheduler's and the player's workers.
    """
    with contextlib.ExitStack() as opening:
        # The speaker first: a device that cannot work is a setup error to report at once, not
        # after loading the voices (Piper takes seconds).
        speaker = open_speaker(cfg.speaker)
        opening.callback(speaker.close)
        engines = build_engines(cfg)
        unavailable = load_voices(engines)
        synth = build_synthesizer(cfg, engines, workers)
        player = Player(speaker, workers=workers)
        opening.pop_all()  # from here the player owns the speaker (its close closes it)
    resources.callback(player.close)
    scheduler = SpeechScheduler(synth, player, publish, cfg, workers=workers)
    resources.callback(scheduler.close)
    return Voice(speaker, synth, player, scheduler, {f"{name}_unavailable": 1 for name in unavailable})
