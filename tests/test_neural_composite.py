"""Compositing the generated mouth into frames, the neural synth, and avatar folders."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from assistant.face.mouth_crop import blend_mask, image_to_crop, invert
from models.neural.config import CropConfig, NetConfig
from models.neural.export import export
from models.neural.networks import build_generator
from services.renderer.neural import (
    CropGeometry, MouthGenerator, NeuralAvatar, NeuralAvatarError, NeuralSynth, colour_match, composite,
)

from .neural_helpers import canonical_face

GEOM = CropGeometry.from_dict(CropConfig(size=64).to_dict())


@pytest.fixture(scope="module")
def generator_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("gen") / "generator.onnx"
    export(build_generator(NetConfig(size=64, ngf=8)), CropConfig(size=64).to_dict(), path)
    return path


@pytest.mark.parametrize("size,tilt", [((1920, 1080), 0.0), ((1280, 720), 12.0), ((640, 360), -5.0)])
def test_compositing_keeps_the_frame_outside_the_mask_unchanged(size, tilt):
    w, h = size
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    lm = canonical_face(size=0.15 * h, origin=(0.5 * w, 0.35 * h))
    m = cv2.getRotationMatrix2D((0.5 * w, 0.5 * h), tilt, 1.0)
    lm = lm @ m[:, :2].T + m[:, 2]
    to_crop = image_to_crop(lm, GEOM.centre, GEOM.half, GEOM.size)
    mouth = np.full((64, 64, 3), (40, 60, 200), np.uint8)
    alpha = GEOM.alpha()
    out = frame.copy()
    region = composite(out, mouth, to_crop, alpha, match_colour=False)
    assert region is not None
    # Where the mask, taken to the frame, is zero, every pixel is exactly the original.
    footprint = cv2.warpAffine(alpha, invert(to_crop), (w, h), flags=cv2.INTER_LINEAR, borderValue=0) > 0
    changed = np.any(out != frame, axis=2)
    assert not np.any(changed & ~footprint)
    outside = np.ones((h, w), bool)
    outside[region] = False
    assert np.array_equal(out[outside], frame[outside])
    # Inside the fully opaque middle the generated colour is what shows.
    centre = np.round(np.array([32, 0.56 * 64]) @ invert(to_crop)[:, :2].T + invert(to_crop)[:, 2]).astype(int)
    assert np.abs(out[centre[1], centre[0]].astype(int) - (40, 60, 200)).max() <= 2
    assert changed.sum() > 0.5 * (alpha > 0.5).sum() * (np.sqrt(abs(np.linalg.det(invert(to_crop)[:, :2]))) ** 2)


def test_compositing_a_face_partly_outside_the_frame():
    frame = np.zeros((120, 160, 3), np.uint8)
    lm = canonical_face(size=80, origin=(150, 60))  # mouth crop runs off the right and bottom edges
    to_crop = image_to_crop(lm, GEOM.centre, GEOM.half, GEOM.size)
    out = frame.copy()
    composite(out, np.full((64, 64, 3), 255, np.uint8), to_crop, GEOM.alpha(), match_colour=False)
    assert out.shape == frame.shape and out.max() > 0
    far = canonical_face(size=80, origin=(5000, 5000))
    assert composite(out.copy(), np.zeros((64, 64, 3), np.uint8), image_to_crop(far, GEOM.centre, GEOM.half, 64),
                     GEOM.alpha()) is None


def test_colour_match_moves_the_ring_to_the_target():
    alpha = blend_mask(64, 0.4, 0.36, 0.56, 0.1)
    rng = np.random.default_rng(1)
    target = np.clip(rng.normal((60, 110, 170), 8, (64, 64, 3)), 0, 255).astype(np.uint8)
    generated = np.clip(rng.normal((120, 120, 120), 8, (64, 64, 3)), 0, 255).astype(np.uint8)
    matched = colour_match(generated, target, alpha)
    ring = (alpha > 0.05) & (alpha < 0.7)
    assert np.allclose(matched[ring].mean(0), target[ring].astype(float).mean(0), atol=1.0)
    flat = np.full((64, 64, 3), 128, np.uint8)  # a flat ring cannot blow up the contrast
    assert np.isfinite(colour_match(generated, flat, alpha)).all()


def test_neural_synth_paints_only_the_mouth_region(generator_file):
    from services.renderer.avatar import Avatar
    from assistant.config.schema import RendererSettings
    from services.renderer.synth import FaceSynth, HeadPose

    base = FaceSynth(Avatar.build(None, None), RendererSettings(width=960, height=540))
    synth = NeuralSynth(base, MouthGenerator(generator_file, prefer_gpu=False), GEOM)
    offset = np.zeros((20, 2))
    offset[8:11, 1] = offset[13:16, 1] = 0.15  # open the jaw
    rest = base.render(None)
    frame = synth.render(offset, blink=0.5, gaze=(0.3, 0.0))
    assert frame.shape == (540, 960, 3)
    ys, xs = np.nonzero(np.any(frame != base.render(None, 0.5, (0.3, 0.0)), axis=2))
    lm = base.landmarks()
    mouth_c = lm[48:68].mean(0)
    eye_d = np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0)))
    assert len(xs) > 100
    assert np.abs(xs - mouth_c[0]).max() < 0.9 * eye_d and np.abs(ys - mouth_c[1]).max() < 1.0 * eye_d
    assert np.array_equal(synth.landmarks(offset, 0.5), base.landmarks(offset, 0.5))
    # The next frame continues from this one; reset starts again from the reference.
    assert synth._previous is not None
    synth.reset()
    assert synth._previous is None
    moved = synth.render(offset, head=HeadPose(dx=0.2, roll_deg=4))
    assert moved.shape == rest.shape
    with pytest.raises(NeuralAvatarError, match="px"):
        NeuralSynth(base, MouthGenerator(generator_file, prefer_gpu=False), CropGeometry.from_dict(CropConfig(size=128).to_dict()))


def test_avatar_folders_are_checked(tmp_path, generator_file):
    with pytest.raises(NeuralAvatarError, match="not found.*avatar build"):
        NeuralAvatar.load("nobody", [tmp_path])
    folder = tmp_path / "anna"
    folder.mkdir()
    (folder / "avatar.json").write_text("{not json")
    with pytest.raises(NeuralAvatarError, match="unreadable"):
        NeuralAvatar.load("anna", [tmp_path])
    (folder / "avatar.json").write_text(json.dumps({"version": 99}))
    with pytest.raises(NeuralAvatarError, match="format 99"):
        NeuralAvatar.load("anna", [tmp_path])
    meta = {"version": 1, "name": "anna", "generator": "generator.onnx", "crop": CropConfig(size=64).to_dict()}
    (folder / "avatar.json").write_text(json.dumps(meta))
    with pytest.raises(NeuralAvatarError, match="missing.*resume"):
        NeuralAvatar.load("anna", [tmp_path])
    (folder / "generator.onnx").write_bytes(b"not a model")
    a = NeuralAvatar.load("anna", [tmp_path])
    assert a.crop == GEOM and a.portrait is None and a.lipsync is None
    with pytest.raises(NeuralAvatarError, match="cannot be loaded"):
        MouthGenerator(a.generator, prefer_gpu=False)
    (folder / "generator.onnx").write_bytes(generator_file.read_bytes())
    assert MouthGenerator(NeuralAvatar.load(str(folder), []).generator, prefer_gpu=False).size == 64
    meta["crop"] = {"size": "big"}
    (folder / "avatar.json").write_text(json.dumps(meta))
    with pytest.raises(NeuralAvatarError, match="crop settings"):
        NeuralAvatar.load("anna", [tmp_path])


def test_the_neural_renderer_never_imports_torch():
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, services.renderer.neural, services.renderer.service; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False", out.stderr
