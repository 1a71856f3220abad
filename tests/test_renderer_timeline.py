"""Timeline: frames slaved to the playback clock, smooth starts and ends, stop within one frame."""

from __future__ import annotations

import numpy as np
import pytest

from services.renderer.idle import IdleLife
from services.renderer.timeline import Timeline, TimelineSettings

FPS = 30.0
SR = 16000


def _mouths(n: int) -> np.ndarray:
    m = np.zeros((n, 20, 2), np.float32)
    m[:, 9, 1] = np.arange(n) + 1.0  # frame k carries the value k + 1
    return m


def test_frame_k_shows_when_audio_clock_reaches_k_over_fps():
    tl = Timeline(TimelineSettings(blend_in_s=0.001, blend_out_s=0.001), lead_s=0.0)
    t0 = 5_000_000_000
    tl.add("u", _mouths(30), np.zeros((20, 2)), FPS, t0, SR, SR)
    for k in (3, 10, 29):
        s = tl.mouth_at(t0 + int(k / FPS * 1e9))
        assert s.speaking and s.utterance_id == "u"
        assert s.offset[9, 1] == pytest.approx(k + 1, abs=1e-3)
    # The voice reports that playback actually started 200 ms late: the face follows its clock.
    tl.playback("u", position_samples=SR // 10, at_ns=t0 + 300_000_000)
    assert tl.mouth_at(t0 + int(0.3e9 + 5 / FPS * 1e9)).offset[9, 1] == pytest.approx(3 + 1 + 5, abs=1e-3)


def test_small_clock_jitter_is_smoothed_not_followed():
    tl = Timeline()
    t0 = 1_000_000_000
    tl.add("u", _mouths(60), np.zeros((20, 2)), FPS, t0, SR, 2 * SR)
    tl.playback("u", SR // 2, t0 + 500_000_000 + 10_000_000)  # 10 ms late report
    shift = tl._utts["u"].start_ns - t0
    assert 0 < shift < 10_000_000


def test_start_and_end_have_no_jump_and_stop_is_immediate():
    tl = Timeline()
    t0 = 2_000_000_000
    open_mouth = np.zeros((45, 20, 2), np.float32)
    open_mouth[:, 9, 1] = 0.3  # fully open from the first to the last frame: the worst case
    tl.add("u", open_mouth, np.zeros((20, 2)), FPS, t0, SR, int(1.5 * SR))
    step = int(1e9 / 60)  # a 60 Hz screen
    values = []
    for t in range(t0 - 200_000_000, t0 + 1_800_000_000, step):
        s = tl.mouth_at(t)
        values.append(0.0 if s.offset is None else float(s.offset[9, 1]))
    values = np.array(values)
    assert values.max() == pytest.approx(0.3)
    assert np.abs(np.diff(values)).max() < 0.3 / 2.5  # eased over several frames, both ends
    assert values[0] == 0 and values[-1] == 0
    tl.add("v", open_mouth, np.zeros((20, 2)), FPS, t0 + 3_000_000_000, SR, int(1.5 * SR))
    assert tl.mouth_at(t0 + 3_500_000_000).offset is not None
    tl.stop()
    assert tl.mouth_at(t0 + 3_500_000_000 + step).offset is None


def test_interrupted_utterance_vanishes_finished_fades():
    tl = Timeline()
    tl.add("a", _mouths(30), np.zeros((20, 2)), FPS, 0, SR, SR)
    tl.finish("a")
    assert tl.mouth_at(500_000_000).offset is not None
    tl.finish("a", interrupted=True)
    assert tl.mouth_at(500_000_000).offset is None and tl.pending == 0


def test_bad_mouths_are_refused():
    with pytest.raises(ValueError):
        Timeline().add("x", np.zeros((5, 68, 2)), np.zeros((20, 2)), FPS, 0, SR, SR)


def test_idle_is_deterministic_and_continuous():
    a, b = IdleLife(seed=7), IdleLife(seed=7)
    seq_a = [a.step(k / 30) for k in range(300)]
    seq_b = [b.step(k / 30) for k in range(300)]
    assert seq_a == seq_b
    life = IdleLife(seed=2)
    heads = []
    for k in range(600):
        life.set_listening(150 <= k < 400)  # the visitor speaks for ~8 s
        life.set_target((0.8, 0.0) if k >= 300 else None)  # and moves to one side
        heads.append(life.step(k / 30, speaking=k >= 450).head)
    roll = np.array([h.roll_deg for h in heads])
    dx = np.array([h.dx for h in heads])
    assert np.abs(np.diff(roll)).max() < 0.3 and np.abs(np.diff(dx)).max() < 0.02  # degrees, IOD per frame
    assert roll[390] - roll[140] > 1.5  # the listening tilt is there
    assert dx[440] > dx[290] + 0.03  # the head turns toward the visitor
