"""Who is speaking: the mouth-vs-sound engine on its own, and on real talking faces (GRID) with their own audio."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.config import CameraSettings
from services.camera.speaker import ActiveSpeaker, mouth_opening

NS = 1_000_000_000
FPS = 30


def feed(eng: ActiveSpeaker, t0: float, t1: float, mouths: dict, level, voiced) -> list:
    """Frames from t0 to t1 s: mouth opening per track (functions of t), audio in 150 ms batches."""
    changes = []
    t = t0
    next_batch = t0
    while t < t1:
        while next_batch + 0.15 <= t:
            ts = [next_batch + i * 0.03 for i in range(5)]
            eng.add_audio(int(next_batch * NS), 30, [level(x) for x in ts], [voiced(x) for x in ts])
            next_batch += 0.15
        for tid, f in mouths.items():
            eng.add_mouth(tid, int(t * NS), f(t))
        ch = eng.update(list(mouths))
        if ch is not None:
            changes.append((round(t, 2), ch))
        t += 1 / FPS
    return changes


def syllables(t: float, on: tuple[float, float]) -> float:
    return 0.5 + 0.5 * np.sin(2 * np.pi * 4.3 * t) if on[0] <= t < on[1] else 0.0


def test_the_face_whose_mouth_follows_the_sound_is_the_speaker():
    rng = np.random.default_rng(0)
    eng = ActiveSpeaker(CameraSettings())
    a, b = (1.0, 4.0), (5.0, 8.0)
    level = lambda t: 20 + 50 * max(syllables(t, a), syllables(t, b))  # noqa: E731
    voiced = lambda t: a[0] <= t < a[1] or b[0] <= t < b[1]  # noqa: E731
    mouths = {1: lambda t: 0.02 + 0.3 * syllables(t, a) + rng.normal(0, 0.004),
              2: lambda t: 0.02 + 0.3 * syllables(t, b) + rng.normal(0, 0.004)}
    changes = feed(eng, 0.0, 9.0, mouths, level, voiced)
    assert [c.track_id for _, c in changes] == [1, 2], changes
    (t1, c1), (t2, c2) = changes
    assert 1.0 < t1 < 1.6 and 5.0 < t2 < 5.7, changes  # switch latency under ~0.6 s
    # since_ns: close to the true onset, not to when the change was decided
    assert abs(c1.since_ns / NS - 1.0) < 0.2 and abs(c2.since_ns / NS - 5.0) < 0.2 and c2.previous == 1
    assert 0 < c2.confidence <= 1


def test_chewing_in_silence_a_cough_and_leaving_view():
    rng = np.random.default_rng(1)
    eng = ActiveSpeaker(CameraSettings())
    a = (1.0, 4.0)
    cough = (6.0, 6.08)
    level = lambda t: 20 + 50 * syllables(t, a) + (50 if cough[0] <= t < cough[1] else 0)  # noqa: E731
    voiced = lambda t: a[0] <= t < a[1] or cough[0] <= t < cough[1]  # noqa: E731
    chew = lambda t: 0.1 + 0.1 * np.sin(2 * np.pi * 1.5 * t) if 4.5 <= t < 7.0 else 0.02  # noqa: E731
    mouths = {1: lambda t: 0.02 + 0.3 * syllables(t, a) + rng.normal(0, 0.004), 2: lambda t: chew(t) + rng.normal(0, 0.004)}
    changes = feed(eng, 0.0, 8.0, mouths, level, voiced)
    assert [c.track_id for _, c in changes] == [1], changes  # neither chewing in silence nor the cough flips it
    # The speaker walks out of view: nobody (-1), once.
    out = eng.update([2])
    assert out is not None and out.track_id == -1 and out.previous == 1
    assert eng.update([2]) is None


def test_audio_arriving_in_a_burst_is_judged_batch_by_batch():
    """A loaded machine delivers hearing.activity late and in bursts: the lips read meanwhile are
    still lined up with each batch, and the speaker is named with the onset of the speech."""
    rng = np.random.default_rng(4)
    eng = ActiveSpeaker(CameraSettings())
    a = (1.0, 3.0)
    mouths = {1: lambda t: 0.02 + 0.3 * syllables(t, a) + rng.normal(0, 0.004), 2: lambda t: 0.02 + rng.normal(0, 0.004)}
    for i in range(int(4.0 * 10)):  # a camera at 10 fps; no audio until 3.9 s
        t = i / 10
        for tid, f in mouths.items():
            eng.add_mouth(tid, int(t * NS), f(t))
    for k in range(int(3.9 / 0.15)):  # then every batch at once
        ts = [k * 0.15 + i * 0.03 for i in range(5)]
        eng.add_audio(int(k * 0.15 * NS), 30, [20 + 50 * syllables(x, a) for x in ts], [a[0] <= x < a[1] for x in ts])
    changes = [c for c in (eng.update([1, 2]) for _ in range(3)) if c is not None]
    assert [c.track_id for c in changes] == [1] and abs(changes[0].since_ns / NS - 1.0) < 0.2, changes
    assert eng.scorings >= 3


def test_mouth_opening_is_the_inner_lip_gap_over_the_eye_distance():
    pts = np.zeros((68, 2), np.float32)
    pts[36], pts[45] = (0, 0), (100, 0)
    for up, lo in ((61, 67), (62, 66), (63, 65)):
        pts[up], pts[lo] = (50, 80), (50, 92)
    assert mouth_opening(pts) == pytest.approx(0.12)
    pts[[67, 66, 65], 1] = 70  # landmarks crossed: closed, never negative
    assert mouth_opening(pts) == 0.0


def _clip(name: str):
    """Mouth openings (25 fps) and the audio level (30 ms frames) of a real GRID clip."""
    import cv2

    from bench.lib.talkers import clip_audio
    from hardware.camera_sim import clip_frames, clip_path
    from services.camera.speaker import MouthReader
    from services.hearing.vad import energy_db

    frames = clip_frames(clip_path(name))
    gray = [cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames]
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    box = max(cascade.detectMultiScale(gray[0], 1.1, 5, minSize=(60, 60)), key=lambda b: b[2])
    reader = MouthReader()
    mouth = np.array([reader.read(g, tuple(float(v) for v in box)) for g in gray])
    pcm = (clip_audio(clip_path(name)) * 32767).astype(np.int16)
    level = np.array([energy_db(pcm[i:i + 480]) for i in range(0, len(pcm) - 480, 480)])
    return mouth, level


def test_real_talking_faces_with_their_own_voices(shared_data):
    """Two GRID speakers side by side, taking turns: each turn goes to the one whose lips move with it."""
    a_mouth, a_level = _clip("lwbsza")
    b_mouth, b_level = _clip("sbia1a")
    eng = ActiveSpeaker(CameraSettings())
    quiet_a, quiet_b = float(a_mouth[:5].mean()), float(b_mouth[:5].mean())
    changes = []
    t0 = 0.0
    for turn, (mouth, level) in enumerate([(a_mouth, a_level), (b_mouth, b_level), (a_mouth, a_level)]):
        speaker = 1 if turn % 2 == 0 else 2
        n = len(mouth)
        floor = np.percentile(level, 20)
        for k in range(0, len(level) - 5, 5):
            eng.add_audio(int((t0 + k * 0.03) * NS), 30, [float(x) for x in level[k:k + 5]], [bool(x > floor + 15) for x in level[k:k + 5]])
            # the frames of this batch's 150 ms (25 fps), the listener's mouth still with noise
            for i in range(int(k * 0.03 * 25), min(n, int((k + 5) * 0.03 * 25))):
                t = int((t0 + i / 25) * NS)
                other = (quiet_b if speaker == 1 else quiet_a) + 0.003 * np.sin(i)
                eng.add_mouth(1, t, mouth[i] if speaker == 1 else other)
                eng.add_mouth(2, t, mouth[i] if speaker == 2 else other)
            ch = eng.update([1, 2])
            if ch is not None:
                changes.append((turn, ch.track_id))
        t0 += len(level) * 0.03 + 0.5
    assert [c for _, c in changes] == [1, 2, 1], changes
    assert [t for t, _ in changes] == [0, 1, 2]
