import numpy as np
import pytest

from assistant.face.audio_features import FeatureConfig, frame_features, n_video_frames


def tone(rate, secs=1.0, f=220.0, amp=0.3):
    t = np.arange(int(rate * secs)) / rate
    return (amp * np.sin(2 * np.pi * f * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_one_row_per_video_frame():
    cfg = FeatureConfig()
    f = frame_features(tone(16000, 1.01), 16000, cfg)
    assert f.shape == (n_video_frames(16160, 16000, 25), cfg.dim) == (26, 104)
    assert f.dtype == np.float32 and np.isfinite(f).all()


def test_silence_is_at_the_floor_and_loud_is_not():
    sil = frame_features(np.zeros(16000, np.float32), 16000)
    loud = frame_features(tone(16000), 16000)
    assert np.all(sil[:, 0] < -20) and np.all(loud[2:-2, 0] > -8)


def test_gain_moves_only_energy():
    x = tone(16000) + 0.05 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)  # every band lit
    a = frame_features(x, 16000)
    b = frame_features(x * 0.1, 16000)
    assert np.allclose(a[2:-2, 1:13], b[2:-2, 1:13], atol=1e-3)
    assert np.allclose(a[5:-5, 0] - b[5:-5, 0], np.log(100), atol=1e-2)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_rate_independent(rate):
    ref = frame_features(tone(16000), 16000)
    got = frame_features(tone(rate), rate)
    assert got.shape == ref.shape
    assert np.corrcoef(ref[5:-5, 0], got[5:-5, 0])[0, 1] > 0.99


def test_int16_stereo_and_nan_input():
    x = (tone(16000) * 32767).astype(np.int16)
    f = frame_features(np.stack([x, x], 1), 16000)
    assert np.allclose(f[2:-2, 0], frame_features(tone(16000), 16000)[2:-2, 0], atol=1e-2)
    bad = tone(16000)
    bad[100:200] = np.nan
    assert np.isfinite(frame_features(bad, 16000)).all()
    assert frame_features(np.zeros(0, np.float32), 16000).shape == (0, 104)
    with pytest.raises(ValueError):
        frame_features(tone(16000), 1000)
