"""Dataset extraction for the neural mouth renderer on real GRID footage, and unusable input."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.face.geometry import MOUTH, mouth_opening, to_canonical
from assistant.face.mouth_crop import blend_mask, draw_mouth
from models.lipsync.video import VideoError
from models.neural.config import CropConfig
from models.neural.dataset import FaceClip, Limits, check_motion, extract

from .neural_helpers import grid_clip


def test_extraction_on_a_grid_clip(shared_data, tmp_path):
    clip = grid_clip(shared_data, 32)
    n = len(clip)
    assert 70 <= n <= 76  # 3 s at 25 fps, trimmed to the audio
    assert clip.crops.shape == (n, 32, 32, 3) and clip.crops.dtype == np.uint8
    assert clip.drawings.shape == (n, 32, 32, 3)
    assert np.isfinite(clip.landmarks).all() and clip.landmarks.shape == (n, 68, 2)
    assert abs(len(clip.audio) / 16000 - n / clip.fps) < 0.1
    # The crops are aligned: the mouth drawing sits in the middle band of every crop.
    ys, xs = np.nonzero(clip.drawings[..., 0].max(axis=0))
    assert 3 <= xs.min() and xs.max() <= 28 and 8 <= ys.min() and ys.max() <= 28
    # The reference is a closed mouth: among the most closed frames of the clip.
    opening = mouth_opening(np.stack([to_canonical(f)[MOUTH] for f in clip.landmarks.astype(float)]))
    assert opening[clip.reference] <= np.quantile(opening, 0.1)
    # Real pixels: the lips (middle of the crop) are redder than the skin above them, in BGR.
    lips = clip.crops[:, 16:22, 10:22].astype(float).mean(axis=(0, 1, 2))
    assert lips[2] > lips[1] + 10
    clip.save(tmp_path / "c.npz")
    back = FaceClip.load(tmp_path / "c.npz")
    assert back.name == clip.name and np.array_equal(back.crops, clip.crops) and back.crop == clip.crop
    lip = clip.lipsync_clip()
    assert lip.mouth.shape[1:] == (20, 2) and len(lip.mouth) <= n


def test_drawing_is_deterministic_and_rejects_bad_points():
    pts = np.array([[10 + 12 * np.cos(a), 30 + 5 * np.sin(a)] for a in np.linspace(0, 2 * np.pi, 20, endpoint=False)])
    a, b = draw_mouth(pts, 64), draw_mouth(pts, 64)
    assert np.array_equal(a, b) and a[..., 0].max() > 200 and a[..., 2].sum() > 0
    with pytest.raises(ValueError, match="20 finite"):
        draw_mouth(np.full((20, 2), np.nan), 64)
    with pytest.raises(ValueError, match="20 finite"):
        draw_mouth(pts[:10], 64)


def test_blend_mask_is_zero_at_the_crop_edge():
    m = blend_mask(64, 0.40, 0.36, 0.56, 0.10)
    assert m.max() == pytest.approx(1.0) and m[0].max() == 0 and m[-1].max() == 0 and m[:, 0].max() == 0


def test_heavy_head_motion_is_refused(shared_data):
    clip = grid_clip(shared_data, 32)
    lm = clip.landmarks.astype(float)
    check_motion(lm, Limits(), "steady")  # the real clip passes
    centre = lm.mean(axis=(0, 1))
    angles = np.radians(np.linspace(-20, 20, len(lm)))  # a 40-degree head roll across the clip
    rot = np.stack([[[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]] for a in angles])
    rolled = np.einsum("tij,tkj->tki", rot, lm - centre) + centre
    with pytest.raises(VideoError, match="heavy head motion.*tilts"):
        check_motion(rolled, Limits(), "rolled")
    scaled = (lm - centre) * np.linspace(1.0, 1.8, len(lm))[:, None, None] + centre
    with pytest.raises(VideoError, match="heavy head motion.*size"):
        check_motion(scaled, Limits(), "leaning")


def test_short_silent_faceless_and_broken_videos_are_refused(shared_data, tmp_path):
    grid = shared_data / "talking" / "grid" / "bbaf2n.mpg"
    with pytest.raises(VideoError, match="too short: 3.0 s"):
        extract(grid, CropConfig(size=32), Limits(min_seconds=20), progress=False)
    with pytest.raises(VideoError, match="no audio track"):
        extract(shared_data / "talking" / "musetalk" / "sun.mp4", CropConfig(size=32), progress=False)
    with pytest.raises(VideoError, match="no such file"):
        extract(tmp_path / "missing.mp4", CropConfig(size=32), progress=False)
    bad = shared_data / "speech" / "malformed" / "awful.wav"
    with pytest.raises(VideoError):
        extract(bad, CropConfig(size=32), progress=False)
    faceless = tmp_path / "noise.mp4"
    write_video(faceless, np.random.default_rng(0).integers(0, 255, (30, 120, 160, 3), dtype=np.uint8))
    with pytest.raises(VideoError, match="no face"):
        extract(faceless, CropConfig(size=32), Limits(min_seconds=0), progress=False)


def write_video(path, frames: np.ndarray, fps: int = 25) -> None:
    """An MP4 with these frames and a second of tone (a real file through PyAV)."""
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        for f in frames:
            for p in v.encode(av.VideoFrame.from_ndarray(f, format="bgr24")):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        tone = (0.2 * np.sin(2 * np.pi * 220 * np.arange(len(frames) / fps * 16000) / 16000)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
        af.sample_rate = 16000
        for p in a.encode(af):
            out.mux(p)
        for p in a.encode():
            out.mux(p)
