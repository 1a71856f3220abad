"""Neural mouth generator: training lowers the loss, ONNX parity, resume after a kill."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from models.neural.config import NetConfig
from models.neural.export import export, fp16_path
from models.neural.frames import FrameSet
from models.neural.networks import build_generator
from models.neural.train import MouthGAN, load_generator, train

from .neural_helpers import grid_clip, tiny_train_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.mark.parametrize("mode", ["temporal", "pix2pix"])
def test_a_few_training_steps_lower_the_generator_loss(shared_data, mode):
    frames = FrameSet([grid_clip(shared_data, 32)])
    torch.manual_seed(0)
    model = MouthGAN(tiny_train_config(mode))
    fixed = frames.batch(np.random.default_rng(1), 8, augment=False)

    def l1() -> float:
        model.set_input(fixed)
        with torch.no_grad():
            model.forward()
        return float((model.fake - fixed["real"]).abs().mean())

    before = l1()
    rng = np.random.default_rng(0)
    for _ in range(25):
        model.set_input(frames.batch(rng, 4))
        losses = model.optimize_parameters()
    after = l1()
    assert np.isfinite(list(losses.values())).all()
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("mode", ["temporal", "pix2pix"])
def test_onnx_export_matches_torch(tmp_path, mode):
    import onnxruntime as ort

    from services.renderer.neural import MouthGenerator

    torch.manual_seed(0)
    g = build_generator(NetConfig(mode=mode, size=32, ngf=8))
    out = tmp_path / "g.onnx"
    worst = export(g, {"size": 32}, out, fp16=True)
    assert worst < 1e-4
    names = [i.name for i in ort.InferenceSession(str(out)).get_inputs()]
    assert names == (["drawing", "previous", "reference"] if mode == "temporal" else ["drawing", "reference"])
    # The renderer's wrapper (uint8 in, uint8 out) gives what torch gives, to a grey level.
    rng = np.random.default_rng(0)
    d, p, r = (rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(3))
    from models.neural.evaluate import torch_generate

    want = torch_generate(g)(d, p if mode == "temporal" else None, r).astype(int)
    got = MouthGenerator(out, prefer_gpu=False)(d, p, r).astype(int)
    assert np.abs(want - got).max() <= 1
    # The float16 model for the GPU also runs (here on the CPU provider) and stays close.
    half = MouthGenerator(fp16_path(out), prefer_gpu=False)(d, p, r).astype(int)
    assert np.abs(half - got).mean() < 2.0


def test_training_resumes_after_a_kill(shared_data, tmp_path):
    """Killed mid-run, the same command continues from its checkpoint and ends where an
    uninterrupted run ends: same steps, bit-identical weights."""
    data = tmp_path / "data"
    data.mkdir()
    grid_clip(shared_data, 32).save(data / "clip.npz")
    cmd = [sys.executable, "-m", "models.neural.train", "--data", str(data), "--steps", "60", "--ngf", "8",
           "--batch", "4", "--checkpoint-every", "5"]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    killed = tmp_path / "killed.pt"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    step = 0
    while step < 10:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.2)
        if killed.is_file():
            step = torch.load(killed, weights_only=False)["step"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert step < 60
    again = subprocess.run([*cmd, "--out", str(killed)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming" in again.stderr
    whole = tmp_path / "whole.pt"
    ref = subprocess.run([*cmd, "--out", str(whole)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert ref.returncode == 0, ref.stderr[-2000:]
    a, ca = load_generator(killed)
    b, cb = load_generator(whole)
    assert ca["step"] == cb["step"] == 60
    assert ca["history"]["step"] == cb["history"]["step"]
    for k, v in a.state_dict().items():
        assert torch.equal(v, b.state_dict()[k]), k


def test_training_refuses_a_checkpoint_of_another_network(shared_data, tmp_path):
    frames = FrameSet([grid_clip(shared_data, 32)])
    clip = frames.clips[0]
    train(frames, tiny_train_config(steps=2), tmp_path / "c.pt", clip.crop, progress=None)
    other = tiny_train_config(steps=4)
    other.net = NetConfig(mode="temporal", size=32, ngf=16, ndf=16)
    with pytest.raises(ValueError, match="different network"):
        train(frames, other, tmp_path / "c.pt", clip.crop, progress=None)
    with pytest.raises(ValueError, match="built for 64 px"):
        bigger = tiny_train_config(steps=2)
        bigger.net = NetConfig(size=64, ngf=8, ndf=8)
        train(frames, bigger, tmp_path / "d.pt", clip.crop, progress=None)


def test_a_warm_started_temporal_model_begins_as_the_pix2pix_generator(shared_data, tmp_path):
    """Progressive training: the time-dependent model starts from a pix2pix checkpoint, gives its
    exact output whatever the previous frame is, and then learns to use the previous frame."""
    from models.neural.train import warm_start

    frames = FrameSet([grid_clip(shared_data, 32)])
    crop = frames.clips[0].crop
    train(frames, tiny_train_config("pix2pix", steps=6), tmp_path / "p.pt", crop, progress=None)
    cfg = tiny_train_config("temporal", steps=12)
    assert warm_start(tmp_path / "p.pt", cfg, tmp_path / "t.pt", crop) == 6
    p2p, _ = load_generator(tmp_path / "p.pt")
    warm, ck = load_generator(tmp_path / "t.pt")
    assert ck["step"] == 6 and ck["net"]["mode"] == "temporal" and ck["data"]["warm_start"]["step"] == 6
    batch = frames.batch(np.random.default_rng(3), 3, augment=False)
    with torch.no_grad():
        want = p2p(batch["d"], None, batch["ref"])
        for previous in (batch["before"], torch.rand_like(batch["before"]) * 2 - 1):
            assert torch.allclose(warm(batch["d"], previous, batch["ref"]), want, atol=1e-5)
    train(frames, cfg, tmp_path / "t.pt", crop, progress=None)  # continues from step 6 to 12
    g, ck = load_generator(tmp_path / "t.pt")
    assert ck["step"] == 12 and g.downs[0][0].weight[:, 3:6].abs().sum() > 0  # it now looks at the previous frame
    assert ck["data"]["warm_start"] == {"from": "p.pt", "step": 6}  # kept through training, for the model card
    with pytest.raises(ValueError, match="from a pix2pix checkpoint"):
        warm_start(tmp_path / "t.pt", cfg, tmp_path / "u.pt", crop)
    wider = tiny_train_config("temporal", steps=12)
    wider.net = NetConfig(mode="temporal", size=32, ngf=16, ndf=16)
    with pytest.raises(ValueError, match="another network"):
        warm_start(tmp_path / "p.pt", wider, tmp_path / "u.pt", crop)


def test_the_held_out_block_never_trains(shared_data):
    clip = grid_clip(shared_data, 32)
    frames = FrameSet([clip], heldout=0.2, heldout_at=0.4)
    (start, end), = frames.describe()["heldout"]
    assert end - start == round(0.2 * len(clip)) and start == round(0.4 * len(clip))
    used = {t for _, t in frames.pairs} | {t - 1 for _, t in frames.pairs}
    assert not used & set(range(start, end))
    assert not start <= frames.splits[0].reference < end
    assert frames.train_frames == len(clip) - (end - start)
    batch = frames.batch(np.random.default_rng(0), 64, augment=False)
    held = torch.stack([torch.from_numpy(clip.crops[t]).permute(2, 0, 1).float() / 127.5 - 1 for t in range(start, end)])
    for key in ("real", "real_prev", "before", "ref"):
        for img in batch[key]:
            assert not any(torch.equal(img, h) for h in held), key
