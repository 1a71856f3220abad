"""Build the voice engines and the speaker from the typed config (no bus here).

Kept apart from the service so tests and the benchmark build exactly what the service runs.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from assistant import paths
from assistant.config.schema import VoiceSettings, VoiceSpeakerSettings
from assistant.errors import SetupError

from .cache import AudioCache, CacheSettings
from .loudness import LoudnessSettings
from .synthesizer import Synthesizer
from .tts.base import TtsEngine
from .tts.failover import FailoverChain, FailoverSettings

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
            from .tts.espeak import EspeakEngine, EspeakSettings

            e = cfg.espeak
            engines.append(EspeakEngine(EspeakSettings(lang=cfg.lang, voice=e.voice, rate_wpm=e.rate_wpm, pitch=e.pitch,
                                                       library_path=e.library_path or None,
                                                       data_path=e.data_path or None)))
        elif name == "piper":
            from .tts.piper_engine import PiperEngine, PiperSettings

            p = cfg.piper
            try:
                engines.append(PiperEngine(PiperSettings(lang=cfg.lang, voice=p.voice, extra_voices=p.extra_voices,
                                                         length_scale=p.length_scale, noise_scale=p.noise_scale,
                                                         noise_w_scale=p.noise_w_scale, threads=p.threads,
                                                         alignments=p.alignments,
                                                         deadline_s=_deadline(cfg, name))))
            except ImportError as exc:  # the kiosk keeps speaking with the rest of the chain
                log.error("voice.engines names piper but %s: speaking without it", exc)
        elif name == "gtts":
            from .tts.gtts_engine import GttsEngine, GttsSettings

            g = cfg.gtts
            engines.append(GttsEngine(GttsSettings(lang=cfg.lang, tld=g.tld, timeout_s=g.timeout_s, slow=g.slow)))
        else:  # the config schema only lets the names above through
            raise ValueError(f"unknown TTS engine {name!r}")
    if not engines:
        raise SetupError(f"voice.engines = {list(cfg.engines)}: none of them is installed; add espeak-ng "
                         "or install piper-tts (make setup)")
    return engines


def build_synthesizer(cfg: VoiceSettings, engines: list[TtsEngine] | None = None) -> Synthesizer:
    """Failover chain + cache + loudness as configured."""
    f = cfg.failover
    chain = FailoverChain(engines if engines is not None else build_engines(cfg),
                          FailoverSettings(timeout_s=f.timeout_s, last_timeout_s=f.last_timeout_s, backoff_s=f.backoff_s))
    cache = None
    if cfg.cache.max_bytes > 0:
        folder = paths.voice_cache_dir(cfg.cache.directory)
        try:
            cache = AudioCache(CacheSettings(directory=folder, max_bytes=cfg.cache.max_bytes))
        except OSError as exc:  # the voice works without it, only slower on repeated phrases
            log.error("voice.cache.directory: cannot use %s (%s); speaking without the audio cache", folder, exc.strerror or exc)
        else:
            log.info("audio cache in %s: %d entries, %.1f MiB", folder, len(cache), cache.total_bytes / 2**20)
    ld = cfg.loudness
    return Synthesizer(chain, cache, LoudnessSettings(target_lufs=ld.target_lufs, peak_dbfs=ld.peak_dbfs, enabled=ld.enabled))


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
