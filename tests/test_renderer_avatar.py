"""Avatar building: default portrait, cache, and clear errors for broken portraits."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest

from services.renderer import avatar as avatar_mod
from services.renderer.avatar import DEFAULT_PORTRAIT, Avatar, AvatarError


def test_default_portrait_has_provenance_and_a_face(tmp_path):
    assert "CC BY 4.0" in (DEFAULT_PORTRAIT.parent / "PROVENANCE.md").read_text()
    av = Avatar.build(None, tmp_path)
    assert av.landmarks.shape == (68, 2)
    assert 35 < av.eye_distance < 60  # the 512 px NASA portrait
    rest = av.mouth_rest
    assert rest.shape == (20, 2) and 0.8 < rest[:, 1].mean() < 1.4  # mouth where the canonical frame says
    assert av.lower.triangles.max() < len(av.lower.points)


def test_cache_reused_and_rebuilt_when_portrait_changes(tmp_path, monkeypatch):
    portrait = tmp_path / "me.png"
    shutil.copy(DEFAULT_PORTRAIT, portrait)
    first = Avatar.build(portrait, tmp_path / "cache")
    folder = tmp_path / "cache" / first.digest[:16]
    assert {"landmarks.npy", "mesh.npz", "lower_face_mask.png", "meta.json"} <= {p.name for p in folder.iterdir()}

    def no_detection(_image):
        raise AssertionError("detector ran although the cache was valid")

    monkeypatch.setattr(avatar_mod, "detect_landmarks", no_detection)
    again = Avatar.build(portrait, tmp_path / "cache")
    np.testing.assert_allclose(again.landmarks, first.landmarks)
    # A changed portrait (mirrored) has another digest: the detector must run again.
    cv2.imwrite(str(portrait), cv2.flip(cv2.imread(str(DEFAULT_PORTRAIT)), 1))
    with pytest.raises(AssertionError, match="detector ran"):
        Avatar.build(portrait, tmp_path / "cache")


def test_corrupt_cache_is_rebuilt(tmp_path):
    first = Avatar.build(None, tmp_path)
    (tmp_path / first.digest[:16] / "landmarks.npy").write_bytes(b"garbage")
    again = Avatar.build(None, tmp_path)
    np.testing.assert_allclose(again.landmarks, first.landmarks)


@pytest.mark.parametrize("kind", ["missing", "empty", "truncated", "text", "noface", "tiny", "directory"])
def test_broken_portraits_fail_clearly(tmp_path, kind):
    path = tmp_path / "portrait.png"
    data = DEFAULT_PORTRAIT.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(data[:200])
    elif kind == "text":
        path.write_text("<html>not an image</html>")
    elif kind == "noface":
        rng = np.random.default_rng(0)
        cv2.imwrite(str(path), cv2.GaussianBlur(rng.integers(0, 255, (400, 400, 3), dtype=np.uint8), (31, 31), 0))
    elif kind == "tiny":
        cv2.imwrite(str(path), np.zeros((20, 20, 3), np.uint8))
    elif kind == "directory":
        path.mkdir()
    with pytest.raises(AvatarError) as err:
        Avatar.build(path, tmp_path / "cache")
    msg = str(err.value)
    assert str(path) in msg and len(msg.splitlines()) == 1


def test_hostile_wav_renamed_png_fails_clearly(shared_data, tmp_path):
    for wav in sorted((shared_data / "speech" / "malformed").glob("*.wav")):
        fake = tmp_path / (wav.stem + ".png")
        shutil.copy(wav, fake)
        with pytest.raises(AvatarError, match="not a readable image|empty"):
            Avatar.build(fake, tmp_path / "cache")


def test_array_portraits(tmp_path):
    img = cv2.imread(str(DEFAULT_PORTRAIT))
    av = Avatar.build(img, None)
    assert av.landmarks.shape == (68, 2)
    with pytest.raises(AvatarError, match="uint8"):
        Avatar.build(img.astype(np.float32), None)
    with pytest.raises(AvatarError, match="no face"):
        Avatar.build(np.full((300, 300, 3), 128, np.uint8), None)
