import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("av")

from assistant.face.audio_features import FeatureConfig  # noqa: E402
from assistant.face.geometry import mouth_opening  # noqa: E402
from models.lipsync.config import TargetConfig  # noqa: E402
from models.lipsync.dataset import clip_from_video, features_and_targets, from_unit  # noqa: E402
from models.lipsync.video import VideoError  # noqa: E402


@pytest.fixture(scope="module")
def grid_clip(shared_data):
    return clip_from_video(shared_data / "talking" / "grid" / "bbaf2n.mpg", progress=False)


def test_grid_clip_is_frame_aligned(grid_clip):
    feats, targ = features_and_targets(grid_clip, FeatureConfig(), TargetConfig())
    assert len(grid_clip.mouth) == 75  # 3.0 s at 25 fps
    assert feats.shape == (75, FeatureConfig().dim) and targ.shape == (75, 40)
    assert 0 <= targ.min() and targ.max() <= 1
    assert np.allclose(from_unit(targ, TargetConfig()), grid_clip.mouth, atol=1e-5)
    opening = mouth_opening(grid_clip.mouth)
    assert opening[:5].max() < 0.05 < opening.max()  # closed before speech, open during it
    # Loud frames are open frames: the audio is aligned to the video, not shifted by seconds.
    assert np.corrcoef(feats[:, 0], opening)[0, 1] > 0.3


def test_other_frame_rates_are_resampled_to_the_model_rate():
    from models.lipsync.dataset import to_fps

    t = np.arange(90) / 30.0  # 3 s at 30 fps
    track = np.zeros((90, 20, 2))
    track[:, :, 1] = np.sin(2 * np.pi * t)[:, None]
    out = to_fps(track, 30.0, 25.0)
    assert out.shape == (75, 20, 2)
    assert np.allclose(out[:, 0, 1], np.sin(2 * np.pi * np.arange(75) / 25.0), atol=0.01)


def _write_video(path, with_audio: bool, face: bool = False):
    import av

    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=25)
        v.width, v.height, v.pix_fmt = 160, 120, "yuv420p"
        a = out.add_stream("aac", rate=16000) if with_audio else None
        for k in range(10):
            img = np.full((120, 160, 3), 90 + k, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in v.encode():
            out.mux(p)
        if a is not None:
            samples = (np.sin(np.arange(6400) / 5) * 0.3).astype(np.float32)[None]
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 16000
            for p in a.encode(frame):
                out.mux(p)
            for p in a.encode():
                out.mux(p)


def test_clear_errors(tmp_path, shared_data):
    with pytest.raises(VideoError, match="no audio"):
        clip_from_video(shared_data / "talking" / "musetalk" / "yongen.mp4", progress=False)
    _write_video(tmp_path / "blank.mp4", with_audio=True)
    with pytest.raises(VideoError, match="no face"):
        clip_from_video(tmp_path / "blank.mp4", progress=False)
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all")
    with pytest.raises(VideoError):
        clip_from_video(tmp_path / "junk.mp4", progress=False)
    for broken in sorted((shared_data / "speech" / "malformed").glob("*.wav")):
        with pytest.raises(VideoError):
            clip_from_video(broken, progress=False)
    with pytest.raises(VideoError, match="no such file"):
        clip_from_video(tmp_path / "missing.mp4", progress=False)
