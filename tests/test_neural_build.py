"""``assistant avatar build``: refusals, a small real build on GRID clips, resuming, and the
renderer service showing the built avatar over the real bus."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.messages import FaceLandmarks, RendererStats, SystemState

from .procs import wait_for

REPO = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}
SMALL = ["--size", "32", "--steps", "12", "--ngf", "8", "--min-seconds", "5", "--lipsync-steps", "4"]


def avatar_cli(*args, timeout=240):
    return subprocess.run([sys.executable, "-m", "assistant", "avatar", "build", *map(str, args)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_unusable_input_is_refused_with_the_reason(shared_data, tmp_path):
    grid = shared_data / "talking" / "grid"
    r = avatar_cli(grid / "bbaf2n.mpg", "--name", "x", "--out", tmp_path)
    assert r.returncode == 2 and "too short: 3.0 s" in r.stderr and "need 20 s" in r.stderr
    r = avatar_cli(shared_data / "talking" / "musetalk" / "sun.mp4", "--name", "x", "--out", tmp_path)
    assert r.returncode == 2 and "no audio track" in r.stderr
    r = avatar_cli(tmp_path / "nothing.mp4", "--name", "x", "--out", tmp_path)
    assert r.returncode == 2 and "no such file" in r.stderr
    r = avatar_cli(grid / "bbaf2n.mpg", "--name", "../evil", "--out", tmp_path)
    assert r.returncode == 2 and "plain name" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def built(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("avatars")
    grid = shared_data / "talking" / "grid"
    # no --lipsync-base: the default fine-tunes the shipped lipsync.onnx (rebuilt as torch)
    r = avatar_cli(grid / "bbaf2n.mpg", grid / "lwbsza.mpg", "--name", "pair", "--out", root, *SMALL)
    assert r.returncode == 0, r.stderr[-3000:]
    return root, r


@pytest.mark.slow
def test_a_small_build_on_grid_clips(built):
    root, r = built
    folder = root / "pair"
    assert r.stdout.strip() == str(folder)
    for stage in ("[1/7 check]", "[2/7 extract]", "[3/7 loop] base video", "[4/7 train] temporal step 12/12",
                  "[4/7 train] pix2pix step 12/12", "[5/7 lipsync] step 4/4", "[6/7 export]", "[7/7 card]"):
        assert stage in r.stderr, stage
    assert "ETA" in r.stderr
    meta = json.loads((folder / "avatar.json").read_text())
    assert meta["version"] == 1 and meta["crop"]["size"] == 32 and meta["net"]["mode"] == "temporal"
    assert meta["lipsync"] == "lipsync.onnx" and meta["onnx_parity"] < 1e-4
    assert json.loads((folder / "work" / "lipsync.json").read_text())["base"].endswith("lipsync.onnx")  # the shipped one
    assert meta["base_loop"] == "base_loop.npz" and meta["build_minutes"] > 0 and meta["heldout_at"] == 0.8
    for f in ("generator.onnx", "generator_fp16.onnx", "portrait.png", "reference.png", "samples.jpg", "MODEL_CARD.md",
              "lipsync.onnx", "loss_temporal.png"):
        assert (folder / f).is_file(), f
    card = (folder / "MODEL_CARD.md").read_text()
    assert "| time-dependent (shipped) |" in card and "| plain pix2pix |" in card and "Time-dependent vs plain pix2pix flicker" in card
    assert "started from plain pix2pix at step 6" in card  # half of the 12 steps
    ev = json.loads((folder / "eval.json").read_text())
    assert set(ev["temporal"]["clips"]) == {"bbaf2n", "lwbsza"}
    assert ev["temporal"]["pooled"]["frames"] == 30  # 20% of 2 x 74 frames
    # The renderer loads it by name; its portrait is the person from the video.
    from services.renderer.neural import MouthGenerator, NeuralAvatar

    a = NeuralAvatar.load("pair", [root])
    assert a.portrait is not None and a.lipsync is not None and MouthGenerator(a.generator, prefer_gpu=False).size == 32
    # The fine-tuned lip-sync model runs in the renderer's learned driver.
    from assistant.face.lstm_driver import LstmDriver

    mouths = LstmDriver(a.lipsync).drive(np.zeros(16000, np.float32), 16000, 25.0)
    assert mouths.shape == (25, 20, 2)


@pytest.mark.slow
def test_a_build_resumes_and_refuses_other_settings(built, shared_data):
    root, _ = built
    grid = shared_data / "talking" / "grid"
    r = avatar_cli(grid / "bbaf2n.mpg", grid / "lwbsza.mpg", "--name", "pair", "--out", root, *SMALL, "--no-compare")
    assert r.returncode == 2 and "other settings (compare)" in r.stderr and "--restart" in r.stderr
    r = avatar_cli(grid / "bbaf2n.mpg", grid / "lwbsza.mpg", "--name", "pair", "--out", root, *SMALL)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming the build" in r.stderr
    assert "[2/7 extract] bbaf2n" not in r.stderr  # cached: no face tracking again
    assert "step 1/12" not in r.stderr  # trained: no training again


@pytest.mark.slow
def test_the_renderer_service_shows_a_built_avatar(built, procs, tmp_path):
    root, _ = built
    procs.broker()
    watcher = procs.client([SystemState.TYPE, FaceLandmarks.TYPE, RendererStats.TYPE])
    env = {"ASSISTANT_RENDERER__NEURAL__AVATAR": "pair", "ASSISTANT_RENDERER__NEURAL__AVATARS_DIR": str(root),
           "ASSISTANT_RENDERER__SCREEN": "null", "ASSISTANT_RENDERER__WIDTH": "640", "ASSISTANT_RENDERER__HEIGHT": "360",
           "ASSISTANT_RENDERER__FPS": "20", "ASSISTANT_RENDERER__CACHE_DIR": str(tmp_path / "cache")}
    proc = procs.start("services.renderer", env=env)
    try:
        wait_for(watcher, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "renderer"
                 and rx.msg.state in ("ready", "failed"), 60)
        stats = wait_for(watcher, lambda rx: isinstance(rx.msg, RendererStats) and rx.msg.frames > 5, 20)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "neural face: avatar pair (32 px mouth on cpu)" in err, err[-3000:]
    assert stats.msg.width == 640 and stats.msg.driver == "lstm"  # the avatar's own fine-tuned lip-sync model
    assert "Traceback" not in err


def test_the_renderer_refuses_a_missing_avatar(procs, tmp_path):
    procs.broker()
    env = {"ASSISTANT_RENDERER__NEURAL__AVATAR": "nobody", "ASSISTANT_RENDERER__NEURAL__AVATARS_DIR": str(tmp_path),
           "ASSISTANT_RENDERER__SCREEN": "null"}
    proc = procs.start("services.renderer", env=env)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "avatar 'nobody' not found" in err and "assistant avatar build" in err
