"""Audio-only mouth driver: loudness opens the mouth, spectral tilt rounds or spreads it (numpy only).

The baseline every learned driver must beat, and a fallback that needs no model file. Opening
follows the log energy between a floor (30 dB under the utterance's loud parts, never below
-60 dBFS, so silence and hiss stay closed) and that loud level. Dark spectra (low spectral
centroid, as in /u/, /o/, /w/) round the lips; bright ones (/i/, /s/) spread them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio_features import FeatureConfig, hop_features, n_video_frames, to_float_mono
from .mouth_shapes import NEUTRAL_MOUTH, articulate

_LN_DB = np.log(10) / 10  # natural-log power units per dB


@dataclass(frozen=True)
class EnergyConfig:
    max_opening: float = 0.22
    """Opening at the loudest frames (a wide /a/ for GRID speakers)."""
    range_db: float = 30.0
    """Dynamic range mapped onto closed..open; speech syllables span about 30 dB."""
    gate_dbfs: float = -60.0
    """Absolute floor: anything quieter is silence."""
    smooth_frames: float = 1.0
    """Gaussian smoothing (frames) against flicker; lips cannot move faster than ~10 Hz."""


class EnergyDriver:
    """``MouthDriver`` that needs only the waveform."""

    name = "energy"
    neutral = NEUTRAL_MOUTH

    def __init__(self, cfg: EnergyConfig = EnergyConfig(), features: FeatureConfig = FeatureConfig()) -> None:
        self.cfg = cfg
        self.features = features

    def parameters(self, pcm, sample_rate: int, fps: float) -> np.ndarray:
        """(frames, 3) opening, width, rounding."""
        x = to_float_mono(pcm)
        n = n_video_frames(len(x), sample_rate, fps)
        fcfg = FeatureConfig(**{**self.features.to_dict(), "fps": fps})
        hops = hop_features(x, sample_rate, fcfg, n_frames=n)
        if n == 0:
            return np.zeros((0, 3), np.float32)
        log_e = hops[:, 0].reshape(n, fcfg.sub_frames).max(axis=1)
        loud = np.percentile(log_e, 95)
        floor = max(loud - self.cfg.range_db * _LN_DB, self.cfg.gate_dbfs * _LN_DB)
        level = np.clip((log_e - floor) / max(loud - floor, 1e-6), 0.0, 1.0)
        # c1 (second cepstral coefficient) tracks spectral tilt: high = dark, low = bright.
        tilt = hops[:, 1].reshape(n, fcfg.sub_frames).mean(axis=1)
        tilt = (tilt - np.median(tilt[level > 0.3])) if (level > 0.3).any() else np.zeros(n)
        rounding = np.clip(tilt / 10.0, 0.0, 1.0) * level
        width = np.clip(-tilt / 60.0, -0.1, 0.1) * level
        params = np.stack([self.cfg.max_opening * level**1.5, width, rounding], axis=1)
        return _smooth(params, self.cfg.smooth_frames).astype(np.float32)

    def drive(self, pcm, sample_rate, fps, phonemes=None, alphabet=""):
        p = self.parameters(pcm, sample_rate, fps)
        return articulate(p[:, 0], p[:, 1], p[:, 2])


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(x) < 2:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, ((r, r), (0, 0)), mode="edge")
    return np.stack([np.convolve(pad[:, j], k, mode="valid") for j in range(x.shape[1])], axis=1)
