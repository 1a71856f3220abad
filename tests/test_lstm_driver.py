"""The shipped model (models/lipsync/weights/lipsync.onnx) through the run-time driver."""

import numpy as np
import pytest

from assistant.face.geometry import mouth_opening
from assistant.face.lstm_driver import DEFAULT_MODEL, LstmDriver

pytestmark = pytest.mark.skipif(not DEFAULT_MODEL.is_file(), reason="no trained lipsync.onnx committed")


@pytest.fixture(scope="module", params=["lipsync.onnx", "lipsync_stream.onnx"])
def driver(request):
    path = DEFAULT_MODEL.with_name(request.param)
    if not path.is_file():
        pytest.skip(f"{path.name} not committed")
    return LstmDriver(path, threads=1, prefer_gpu=False)


def test_silence_closes_the_mouth(driver):
    for pcm in (np.zeros(32000, np.int16), (np.random.default_rng(0).standard_normal(32000) * 3e-4).astype(np.float32)):
        mouth = driver.drive(pcm, 16000, 25)
        assert mouth.shape == (50, 20, 2) and mouth.dtype == np.float32
        assert mouth_opening(mouth).max() < 0.04
        assert np.abs(mouth - driver.neutral).max() < 0.08


def test_speech_opens_the_mouth(driver, shared_data):
    import soundfile as sf

    audio, rate = sf.read(str(next((shared_data / "speech" / "librivox").glob("*.wav"))), dtype="float32")
    opening = mouth_opening(driver.drive(audio, rate, 25))
    assert opening.max() > 0.1 and np.percentile(opening, 75) > 0.05
    # Chinese speech too: any sound wave, not just English.
    zh, zr = sf.read(str(shared_data / "talking" / "musetalk" / "sun.wav"), dtype="float32")
    assert mouth_opening(driver.drive(zh[: zr * 5], zr, 25)).max() > 0.1


def test_any_frame_rate(driver):
    t = np.arange(16000) / 16000
    pcm = (0.3 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    a, b = driver.drive(pcm, 16000, 25), driver.drive(pcm, 16000, 50)
    assert b.shape == (50, 20, 2)
    assert np.abs(b[::2] - a).max() < 1e-5
