"""Waveform augmentation that keeps audio and mouth track aligned (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assistant.face.mouth_shapes import NEUTRAL_MOUTH

from .dataset import SAMPLE_RATE, Clip


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges; each says which real-world condition it stands for."""

    tempo: tuple[float, float] = (0.85, 1.15)  # faster/slower talkers (speed perturbation)
    gain_db: tuple[float, float] = (-24.0, 6.0)  # quiet microphones to hot TTS output
    p_noise: float = 0.5
    snr_db: tuple[float, float] = (5.0, 40.0)  # kiosk fans, street noise
    p_reverb: float = 0.3
    rt60_s: tuple[float, float] = (0.1, 0.6)  # small office to hall
    p_pad: float = 0.5
    pad_s: tuple[float, float] = (0.1, 1.2)  # silence around speech must close the mouth


def _resample_track(mouth: np.ndarray, n_out: int) -> np.ndarray:
    t_in = np.linspace(0, 1, len(mouth))
    t_out = np.linspace(0, 1, n_out)
    flat = mouth.reshape(len(mouth), -1)
    return np.stack([np.interp(t_out, t_in, flat[:, j]) for j in range(flat.shape[1])], 1).reshape(n_out, 20, 2)


def augment(clip: Clip, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(audio, mouth) of a randomly perturbed copy of ``clip``."""
    import soxr

    audio, mouth = clip.audio, clip.mouth.astype(np.float64)
    speed = rng.uniform(*cfg.tempo)
    if abs(speed - 1) > 0.01:  # play faster: fewer samples and fewer frames
        audio = soxr.resample(audio, SAMPLE_RATE * speed, SAMPLE_RATE).astype(np.float32)
        mouth = _resample_track(mouth, max(2, int(round(len(mouth) / speed))))
    if rng.random() < cfg.p_pad:
        fps = clip.fps
        pre, post = (int(rng.uniform(*cfg.pad_s) * fps) for _ in range(2))
        audio = np.concatenate([np.zeros(int(pre / fps * SAMPLE_RATE), np.float32), audio[: int(len(mouth) / fps * SAMPLE_RATE)],
                                np.zeros(int(post / fps * SAMPLE_RATE), np.float32)])
        mouth = np.concatenate([np.repeat(NEUTRAL_MOUTH[None], pre, 0), mouth, np.repeat(NEUTRAL_MOUTH[None], post, 0)])
    if rng.random() < cfg.p_reverb:
        rt60 = rng.uniform(*cfg.rt60_s)
        n = int(rt60 * SAMPLE_RATE)
        ir = rng.standard_normal(n) * np.exp(-6.9 * np.arange(n) / n)
        ir[0] = 1.0 / rng.uniform(0.3, 1.0)  # direct path louder than the tail
        wet = np.fft.irfft(np.fft.rfft(audio, len(audio) + n) * np.fft.rfft(ir, len(audio) + n))[: len(audio)]
        audio = (wet / (np.abs(wet).max() + 1e-9) * np.abs(audio).max()).astype(np.float32)
    peak = np.abs(audio).max() + 1e-9
    audio = audio / peak * 0.9 * 10 ** (rng.uniform(*cfg.gain_db) / 20)
    if rng.random() < cfg.p_noise:
        noise = rng.standard_normal(len(audio))
        if rng.random() < 0.5:  # pink-ish: integrate white noise a little
            noise = np.convolve(noise, np.exp(-np.arange(32) / 8.0), mode="same")
        sig_pow = np.mean(audio**2) + 1e-12
        noise *= np.sqrt(sig_pow / 10 ** (rng.uniform(*cfg.snr_db) / 10) / (np.mean(noise**2) + 1e-12))
        audio = audio + noise
    return np.clip(audio, -1, 1).astype(np.float32), mouth.astype(np.float32)
