"""Loudness normalisation, so gTTS, espeak-ng and MBROLA sound equally loud from the speaker.

Integrated loudness (ITU-R BS.1770, via pyloudnorm) is what listeners compare between voices;
plain RMS over-weights low frequencies and pauses. Clips shorter than one 400 ms gating block
have no BS.1770 loudness, so they fall back to RMS, which for speech lands within about 1 dB.
A peak ceiling keeps the gain from clipping.
"""

from __future__ import annotations

import importlib.util
import logging

import numpy as np

from assistant.config.schema import VoiceLoudnessSettings

if importlib.util.find_spec("pyloudnorm") is None:  # pragma: no cover - depends on the install
    raise ImportError("loudness normalisation needs the voice extra: pip install 'embodied-assistant[voice]'")

log = logging.getLogger(__name__)

def preload():
    """Import pyloudnorm (~1 s of scipy on a small machine). The voice does it on a worker thread
    after start-up, so a restarted voice is back at once and the first reply does not pay for it;
    Python's import lock makes a reply that needs it meanwhile wait for that one import."""
    import pyloudnorm

    return pyloudnorm


def variant(settings: VoiceLoudnessSettings) -> str:
    """Tag for the cache key: audio normalised differently is a different entry."""
    return f"lufs{settings.target_lufs:g}/pk{settings.peak_dbfs:g}" if settings.enabled else "raw"


def measure_lufs(pcm: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness of int16 ``pcm`` in LUFS (RMS-based for clips under 0.4 s); -inf for silence."""
    x = pcm.astype(np.float64) / 32768.0
    if x.size == 0 or not np.any(x):
        return float("-inf")
    if x.size >= int(0.4 * sample_rate) + 1:
        lufs = preload().Meter(sample_rate).integrated_loudness(x)
        if np.isfinite(lufs):
            return float(lufs)
    # RMS in dBFS is about 0.7 dB above LUFS for speech; close enough for a few syllables.
    return float(20 * np.log10(np.sqrt(np.mean(x**2)))) - 0.7


def normalize(pcm: np.ndarray, sample_rate: int, settings: VoiceLoudnessSettings = VoiceLoudnessSettings()) -> np.ndarray:
    """``pcm`` scaled to the target loudness, limited by the peak ceiling; int16 out."""
    if not settings.enabled or pcm.size == 0:
        return pcm
    lufs = measure_lufs(pcm, sample_rate)
    if not np.isfinite(lufs):
        return pcm
    gain_db = settings.target_lufs - lufs
    peak = float(np.abs(pcm.astype(np.int32)).max()) / 32768.0
    ceiling_db = settings.peak_dbfs - 20 * np.log10(peak)
    if gain_db > ceiling_db:
        log.debug("loudness: gain %.1f dB limited to %.1f dB by the peak ceiling", gain_db, ceiling_db)
        gain_db = ceiling_db
    out = pcm.astype(np.float32) * np.float32(10 ** (gain_db / 20))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)
