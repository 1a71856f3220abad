"""A simulated room between the speaker and the microphone, for the microphone's twin.

The speaker's sound reaches the microphone late (distance plus device buffers), quieter, and
smeared by reverberation: an exponentially decaying noise tail, the usual statistical model of a
room impulse response. Deterministic for a given seed.
"""

from __future__ import annotations

import numpy as np

RATE = 16_000


def impulse_response(rt60_s: float = 0.3, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """Unit-energy room impulse response: a direct path, then a tail decaying 60 dB in ``rt60_s``."""
    rng = np.random.default_rng(seed)
    n = max(1, int(rt60_s * rate))
    tail = rng.standard_normal(n) * 10 ** (-3 * np.arange(n) / n)  # -60 dB at rt60
    tail[0] = 0.0
    h = tail * 0.3
    h[0] = 1.0
    return h / np.sqrt(np.sum(h ** 2))


def leak(pcm: np.ndarray, *, delay_ms: float = 25.0, gain_db: float = -6.0, rt60_s: float = 0.3, seed: int = 0) -> np.ndarray:
    """What the microphone picks up of ``pcm`` (int16, 16 kHz) played by the speaker: float32,
    ``delay_ms`` late, ``gain_db`` quieter, reverberant; longer than ``pcm`` by the delay and the tail."""
    x = pcm.astype(np.float32)
    wet = np.convolve(x, impulse_response(rt60_s, seed=seed)).astype(np.float32) * np.float32(10 ** (gain_db / 20))
    return np.concatenate([np.zeros(int(delay_ms * RATE / 1000), np.float32), wet])


def mix(length: int, *parts: tuple[int, np.ndarray]) -> np.ndarray:
    """int16 signal of ``length`` samples summing each ``(offset, signal)``."""
    out = np.zeros(length, np.float32)
    for offset, sig in parts:
        k = max(0, min(len(sig), length - offset))
        out[offset:offset + k] += sig[:k]
    return np.clip(out, -32768, 32767).astype(np.int16)
