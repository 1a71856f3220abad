import numpy as np

from assistant.face.energy import EnergyDriver
from assistant.face.geometry import mouth_opening


def syllables(rate=16000, secs=2.0):
    t = np.arange(int(rate * secs)) / rate
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 2  # five "syllables"
    return (0.3 * env * np.sin(2 * np.pi * 150 * t) * (1 + np.sin(2 * np.pi * 600 * t))).astype(np.float32)


def test_silence_and_hiss_stay_closed():
    d = EnergyDriver()
    assert mouth_opening(d.drive(np.zeros(16000), 16000, 25)).max() < 0.02
    hiss = (np.random.default_rng(0).standard_normal(16000) * 1e-4).astype(np.float32)
    assert mouth_opening(d.drive(hiss, 16000, 25)).max() < 0.02


def test_follows_loudness():
    x = syllables()
    o = mouth_opening(EnergyDriver().drive(x, 16000, 25))
    assert o.shape == (50,)
    env = np.array([np.abs(x[int(k / 25 * 16000): int((k + 1) / 25 * 16000)]).mean() for k in range(50)])
    assert o.max() > 0.12 and np.corrcoef(o, env)[0, 1] > 0.7


def test_gain_invariant_opening():
    x = syllables()
    a = mouth_opening(EnergyDriver().drive(x, 16000, 25))
    b = mouth_opening(EnergyDriver().drive(x * 0.2, 16000, 25))
    assert np.abs(a - b).max() < 0.02
