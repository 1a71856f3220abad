"""Face synthesis judged on the output pixels: dlib re-measures what was rendered."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from assistant.messages import Face, Faces
from .renderer_helpers import PixelLandmarks, RmsDriver, default_avatar, eye_aspect, frame_rms, inner_opening, load_speech
from services.renderer.idle import IdleLife, gaze_from_faces
from assistant.config.schema import RendererSettings
from services.renderer.synth import FaceSynth, HeadPose

FPS = 30.0


@pytest.fixture(scope="module")
def synth():
    return FaceSynth(default_avatar(), RendererSettings(width=1280, height=720, zoom=1.4))


def test_rest_frame_is_the_portrait_and_small_motion_is_small(synth):
    rest = synth.render()
    assert rest.shape == (720, 1280, 3) and rest.dtype == np.uint8
    # The person is laid over the filled-in room through a feathered matte: the eyes are the
    # portrait's pixels (to rounding), the lips are pressed together, only the soft edge of hair
    # and shoulders may differ more.
    lm = synth.landmarks_rest
    x0, y0 = np.floor(lm[36:48].min(axis=0)).astype(int)
    x1, y1 = np.ceil(lm[36:48].max(axis=0)).astype(int)
    assert np.abs(rest[y0:y1, x0:x1].astype(int) - synth.base[y0:y1, x0:x1]).max() <= 1
    assert np.abs(rest.astype(int) - synth.base).mean() < 1.0
    tiny = np.zeros((20, 2))
    tiny[8:11, 1] = 0.002
    nudged = synth.render(tiny)
    # Continuity: a tiny mouth movement changes the picture a tiny bit (no pop at speech onset).
    assert np.abs(nudged.astype(int) - rest).mean() < 0.05
    assert np.abs(nudged.astype(int) - rest).max() < 40


def test_full_hd_output(synth):
    big = FaceSynth(default_avatar(), RendererSettings(width=1920, height=1080, zoom=1.3))
    frame = big.render(blink=0.5, gaze=(0.5, 0), head=HeadPose(dx=0.05, roll_deg=1))
    assert frame.shape == (1080, 1920, 3)


def test_mouth_opening_in_pixels_follows_speech(shared_data, synth):
    pcm, sr = load_speech(shared_data, 0)
    driver = RmsDriver()
    mouths = driver.drive(pcm, sr, FPS)
    activity = frame_rms(pcm, sr, FPS)
    measure = PixelLandmarks()
    measured = []
    for k, mouth in enumerate(mouths):
        frame = synth.render(mouth - driver.neutral, head=HeadPose(dx=0.01 * np.sin(k / 9)))
        measured.append(inner_opening(measure(frame)))
    measured = np.array(measured)
    r = np.corrcoef(measured, np.log(activity + 1e-4))[0, 1]
    assert r > 0.6, f"pixel mouth opening vs speech activity r={r:.2f}"
    loud, quiet = activity > np.percentile(activity, 70), activity < np.percentile(activity, 20)
    assert measured[loud].mean() > measured[quiet].mean() + 0.05


def test_blinks_happen_and_close_the_eyes_in_pixels(synth):
    life = IdleLife(seed=3)
    states = [life.step(k / FPS) for k in range(int(20 * FPS))]
    blink = np.array([s.blink for s in states])
    starts = np.nonzero((blink[1:] > 0.5) & (blink[:-1] <= 0.5))[0]
    assert 3 <= len(starts) <= 14, f"{len(starts)} blinks in 20 s"
    assert blink.max() > 0.95 and (blink < 0.05).mean() > 0.8  # eyes open most of the time
    measure = PixelLandmarks()
    closed_k = int(np.argmax(blink))
    open_ear = eye_aspect(measure(synth.render(head=states[0].head)))
    closed_ear = eye_aspect(measure(synth.render(blink=blink[closed_k], head=states[closed_k].head)))
    assert closed_ear < 0.7 * open_ear, (open_ear, closed_ear)  # dlib on 8-px-tall source eyes


def _iris_x(frame: np.ndarray, eye: np.ndarray) -> float:
    """Darkest-pixel centroid inside an eye contour, relative to the eye's centre, in eye widths."""
    x0, y0 = np.floor(eye.min(0)).astype(int)
    x1, y1 = np.ceil(eye.max(0)).astype(int) + 1
    gray = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    mask = np.zeros(gray.shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(eye - (x0, y0)).astype(np.int32), 1)
    vals = gray[mask > 0]
    ys, xs = np.nonzero((gray <= np.percentile(vals, 25)) & (mask > 0))
    return float((xs.mean() + x0 - eye[:, 0].mean()) / (eye[3, 0] - eye[0, 0]))


def test_gaze_follows_a_visitor_walking_across(synth):
    life = IdleLife(seed=1)
    eyes = synth.landmarks_rest
    xs, targets = [], []
    for k in range(int(4 * FPS)):
        # The visitor walks across the camera image from left to right in 3 s, then stands still.
        cx = 80 + min(k / (3 * FPS), 1.0) * 480
        faces = Faces(frame_ns=k, width=640, height=480, faces=[Face(track_id=1, box=(cx - 40, 200, 80, 80), distance_m=1.2)])
        life.set_target(gaze_from_faces(faces))
        state = life.step(k / FPS)
        if k % 6:
            continue
        frame = synth.render(gaze=state.gaze)  # no head motion: measure the eyes where they are
        xs.append((_iris_x(frame, eyes[36:42]) + _iris_x(frame, eyes[42:48])) / 2)
        targets.append(cx)
    xs = np.array(xs)
    # Camera-left is the avatar's left, i.e. the screen's right: the irises move right to left.
    r = np.corrcoef(xs, targets)[0, 1]
    assert r < -0.9, f"iris x vs visitor x r={r:.2f}"
    assert xs[:3].mean() - xs[-3:].mean() > 0.12  # eye widths


def test_landmarks_match_the_pixels(synth):
    mouth = np.zeros((20, 2))
    mouth[[7, 8, 9, 10, 11, 17, 18, 19], 1] = 0.25
    head = HeadPose(dx=0.05, dy=-0.02, roll_deg=1.5, scale=1.01)
    predicted = synth.landmarks(mouth, 0.0, head)
    measured = PixelLandmarks()(synth.render(mouth, head=head))
    err = np.hypot(*(predicted[48:68] - measured[48:68]).T).mean() / synth.eye_distance
    assert err < 0.08, f"mouth landmark error {err:.3f} inter-ocular"


def test_partial_head_redraw_matches_a_full_warp():
    """Between full warps only the mouth and eyes are redrawn: the picture must equal a full warp
    with the same pose, and the pose must stay within ``head_redraw_px`` of the exact one."""
    avatar = default_avatar()
    fast = FaceSynth(avatar, RendererSettings(width=640, height=360))
    exact = FaceSynth(avatar, RendererSettings(width=640, height=360), head_redraw_px=0)
    life = IdleLife(seed=2)
    driver = RmsDriver()
    t = np.arange(int(3 * 16000)) / 16000
    pcm = (np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 2.5 * t), 0, 1) * 15000).astype(np.int16)
    mouths = driver.drive(pcm, 16000, FPS)
    partial = 0
    for k, mouth in enumerate(mouths[:60]):
        state = life.step(k / FPS, speaking=True)
        before = fast._warped_m
        frame = fast.render(mouth - driver.neutral, state.blink, state.gaze, state.head)
        partial += fast._warped_m is before
        m = fast._warped_m
        # What a full warp with the pose actually used gives:
        exact._warped, exact._warped_m = None, None
        exact.head_matrix = lambda head, m=m: m
        reference = exact.render(mouth - driver.neutral, state.blink, state.gaze, state.head)
        diff = np.abs(frame.astype(int) - reference)
        assert diff.max() <= 2, f"frame {k}: partial redraw differs from a full warp by {diff.max()}"
        d = FaceSynth.head_matrix(fast, state.head) - m  # exact pose minus the pose drawn
        lag = np.abs(fast._corners @ d[:, :2].T + d[:, 2]).max()
        assert lag < fast.head_redraw_px, f"frame {k}: pose {lag:.2f} px behind"
    assert partial > 20, f"only {partial} of 60 frames avoided the full warp"


def test_closed_lips_meet_in_one_soft_line_not_a_seam_of_teeth():
    """``MouthInterior.seal``: lips warped together over a tooth sliver and the shadow behind it
    are redrawn as lip fading into lip with one dark line where they touch."""
    from services.renderer.interior import MouthColours, MouthInterior

    lip = np.array([90, 100, 190], np.uint8)  # BGR
    region = np.tile(lip, (60, 120, 1))
    region[20:23] = 235  # a sliver of tooth...
    region[23:25] = 20  # ...and the dark gap behind it, between the lips
    y = 23.0
    inner = np.array([[10, y], [35, y], [60, y], [85, y], [110, y], [85, y], [60, y], [35, y]], np.float64)
    outer_upper = np.array([[30, 8], [45, 6], [60, 6], [75, 6], [90, 8]], np.float64)
    interior = MouthInterior(MouthColours(lip.astype(np.float32), np.float32([200, 210, 220])), 200.0,
                             inner, inner)
    before = region.copy()
    interior.seal(region, inner, outer_upper)
    band = region[12:30, 45:76].astype(int)
    grey = band.mean(axis=2)
    assert grey.max() <= lip.mean() + 3, "a tooth sliver is left between the lips"
    darkest = grey.argmin(axis=0) + 12
    assert np.all(np.abs(darkest - y) <= 1.5) and grey.min() < 0.75 * lip.mean()  # one line where they touch
    assert (grey < 0.75 * lip.mean()).sum(axis=0).max() <= 3  # ... a thin one, not a gap
    # Beyond the corners and outside the band nothing changes; near the corners, hardly anything.
    np.testing.assert_array_equal(region[:, :10], before[:, :10])
    change = np.abs(region.astype(int) - before).max(axis=(0, 2))
    assert change[10:14].max() < 0.25 * change[55:65].min()
    np.testing.assert_array_equal(region[40:], before[40:])


def test_gaze_goes_to_the_speaker_among_several_faces():
    faces = Faces(frame_ns=1, width=640, height=480, faces=[Face(track_id=1, box=(100, 200, 80, 80), distance_m=0.8),
                                                            Face(track_id=2, box=(460, 200, 80, 80), distance_m=0.9)])
    first, speaker = gaze_from_faces(faces), gaze_from_faces(faces, track_id=2)
    assert first[0] > 0.3 and speaker[0] < -0.3  # camera-left face: screen right; camera-right: screen left
    assert gaze_from_faces(faces, track_id=7) == first  # a speaker out of view: the engaged-first face
