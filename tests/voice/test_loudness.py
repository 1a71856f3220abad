"""Loudness normalisation, measured on real speech from different sources."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from assistant.config.schema import VoiceLoudnessSettings
from services.voice.loudness import measure_lufs, normalize


def _human(shared_data):
    path = sorted((shared_data / "speech" / "librivox").glob("*.wav"))[0]
    audio, rate = sf.read(path, dtype="int16", always_2d=True)
    return audio[:, 0].copy(), rate


def test_engines_and_recordings_end_up_equally_loud(shared_data, espeak):
    human, human_rate = _human(shared_data)
    robot = espeak.synthesize("Hello, I am the front desk assistant. How can I help you today?")
    quiet = (robot.pcm.astype(np.float32) * 0.05).astype(np.int16)  # -26 dB: a quiet engine
    sources = [(human, human_rate), (robot.pcm, robot.sample_rate), (quiet, robot.sample_rate)]
    before = [measure_lufs(p, r) for p, r in sources]
    assert max(before) - min(before) > 20
    target = VoiceLoudnessSettings(target_lufs=-20.0)
    after = [measure_lufs(normalize(p, r, target), r) for p, r in sources]
    assert after == pytest.approx([-20.0] * 3, abs=0.5), after


def test_peak_ceiling_wins_over_the_target(espeak):
    s = espeak.synthesize("Loud and clear.")
    quiet = (s.pcm.astype(np.float32) * 0.1).astype(np.int16)
    out = normalize(quiet, s.sample_rate, VoiceLoudnessSettings(target_lufs=0.0, peak_dbfs=-3.0))
    peak_db = 20 * np.log10(np.abs(out.astype(np.int32)).max() / 32768)
    assert peak_db == pytest.approx(-3.0, abs=0.05), "gain stops at the ceiling, no clipping"
    assert measure_lufs(out, s.sample_rate) < -10.0


def test_short_and_silent_clips():
    rate = 16000
    t = np.arange(int(0.2 * rate)) / rate
    beep = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)  # shorter than a BS.1770 block
    assert measure_lufs(normalize(beep, rate), rate) == pytest.approx(-20.0, abs=0.5)
    silence = np.zeros(rate, np.int16)
    assert np.array_equal(normalize(silence, rate), silence)
    assert normalize(np.zeros(0, np.int16), rate).size == 0
