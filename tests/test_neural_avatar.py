"""Person-specific avatars (issue 23): the base video loop, the renderer's ``LoopSynth``, the new
training losses, and a budgeted build on six seconds of a real single-speaker recording."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": "/tmp"}


def test_the_loop_is_cut_where_the_seam_is_smallest():
    from models.neural.baseloop import choose_loop

    rng = np.random.default_rng(0)
    n, fps = 300, 25.0
    # A slow drift with one exact repeat: frame 199 looks like frame 59 (the frame before 60).
    base = np.cumsum(rng.normal(0, 1.0, (n, 64)), axis=0).astype(np.float32)
    base[199] = base[59]
    lm = np.zeros((n, 68, 2))
    lm[:, 36:42] = (100.0, 100.0)
    lm[:, 42:48] = (160.0, 100.0)
    lm[:, 48:68] = (130.0, 170.0) + rng.normal(0, 0.5, (n, 20, 2))
    ch = choose_loop(base, lm, n, fps, min_s=4.0, max_s=8.0, fade=6)
    assert (ch.start, ch.start + ch.length) == (60, 200)
    assert ch.seam < 5.0
    with pytest.raises(ValueError, match="too few"):
        choose_loop(base, lm, 7, fps)


def test_the_lips_losses_look_only_inside_the_lips():
    import torch

    from models.neural.train import _gradients, _masked_l1

    a, b = torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)
    b[..., :4, :] = 1.0  # differs only in the top half
    top, bottom = torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)
    top[..., :4, :], bottom[..., 4:, :] = 1, 1
    assert _masked_l1(a, b, top).item() == pytest.approx(1.0)
    assert _masked_l1(a, b, bottom).item() == pytest.approx(0.0)
    ga, gb = _gradients(a, b)
    assert ga.shape == (1, 6, 7, 7) and gb.abs().sum() > 0  # the edge at row 4 shows in b's gradients


def test_a_training_step_uses_every_loss(shared_data):
    import torch

    from models.neural.frames import FrameSet
    from models.neural.train import MouthGAN

    from .neural_helpers import grid_clip, tiny_train_config

    torch.manual_seed(0)
    fs = FrameSet([grid_clip(shared_data, 32)], 0.2, 0.8)
    batch = fs.batch(np.random.default_rng(0), 2)
    assert batch["m"].shape == (2, 1, 32, 32) and 0 < batch["m"].mean() < 0.5  # lips: part of the crop
    cfg = tiny_train_config()
    from dataclasses import replace

    cfg = replace(cfg, feature_matching=10.0, mouth_l1=50.0, edge_l1=50.0, temporal_l1=100.0)
    model = MouthGAN(cfg)
    model.set_input(batch)
    losses = model.optimize_parameters()
    assert {"fm", "lips", "edges"} <= set(losses) and all(np.isfinite(v) for v in losses.values())
    assert losses["fm"] > 0 and losses["lips"] > 0 and losses["edges"] > 0


@pytest.fixture(scope="module")
def short_build(shared_data, tmp_path_factory):
    src = shared_data / "talking" / "single" / "lieu.mp4"
    if not src.is_file():
        pytest.skip(f"{src} absent (single-speaker recordings)")
    from models.neural.dataset import head_of

    tmp = tmp_path_factory.mktemp("single")
    video = tmp / "six.mp4"
    head_of(src, video, 6.0)
    root = tmp / "avatars"
    r = subprocess.run([sys.executable, "-m", "assistant", "avatar", "build", str(video), "--name", "six", "--out", str(root),
                        "--size", "32", "--ngf", "8", "--minutes", "0.5", "--min-seconds", "5", "--loop-seconds", "1", "3"],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=400)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "six", r


@pytest.mark.slow
def test_a_budgeted_build_on_six_seconds_holds_out_the_tail(short_build):
    folder, r = short_build
    assert "[2/7 extract] six.mp4: landmarks 50/150 frames ETA" in r.stderr  # progress inside one video too
    assert "[3/7 loop] base video:" in r.stderr and "budget 0.5 min" in r.stderr and "-> 50 steps each" in r.stderr
    assert "[4/7 train] temporal step 50/50" in r.stderr and "build ETA" in r.stderr
    plan = json.loads((folder / "work" / "plan.json").read_text())
    assert plan["steps"] == 50 and set(plan["step_s"]) == {"temporal", "pix2pix"}
    meta = json.loads((folder / "avatar.json").read_text())
    assert meta["base_loop"] == "base_loop.npz" and meta["build_minutes"] > 0
    assert {"extract", "loop", "train", "export"} <= set(meta["timing_s"])
    ckpt_data = json.loads((folder / "eval.json").read_text())["temporal"]
    assert ckpt_data["pooled"]["frames"] == 30  # the last 20% of 150 frames
    loop = meta["loop"]
    assert loop["start"] + loop["frames"] <= 120  # cut from the training frames only
    assert 1.0 <= loop["seconds"] <= 3.0


@pytest.mark.slow
def test_the_renderer_plays_the_base_video_with_the_generated_mouth(short_build):
    from services.renderer.neural import BaseLoop, LoopSynth, MouthGenerator, NeuralAvatar

    folder, _ = short_build
    a = NeuralAvatar.load(folder, [])
    loop = BaseLoop(a.base_loop)
    assert loop.size == (256, 256) and len(loop) >= 25
    synth = LoopSynth(loop, MouthGenerator(a.generator, prefer_gpu=False), a.crop)
    open_mouth = np.zeros((20, 2))
    open_mouth[14:17, 1] = 0.25  # lower inner lip down
    frames = [synth.render(open_mouth if k % 2 else None) for k in range(len(loop) + 2)]
    lm_open = synth.landmarks(open_mouth)
    lm_rest = synth.landmarks(None)
    assert frames[0].shape == (256, 256, 3)
    assert np.abs(lm_open[48:68] - lm_rest[48:68]).max() > 1.0 and np.allclose(lm_open[:48], lm_rest[:48])
    # Only the mouth region is generated: far from the mouth the pixels are the loop's own.
    k = 3
    diff = np.abs(frames[k].astype(int) - loop.frame(k).astype(int)).max(axis=2)
    mouth = lm_rest[48:68].mean(0)
    ys, xs = np.nonzero(diff)
    assert len(ys) > 0 and np.hypot(xs - mouth[0], ys - mouth[1]).max() < 80
    # The loop wraps: the frame after the last is the first again, and that seam is no jump.
    assert synth._shown == 1  # len(loop) + 2 frames rendered: the index wrapped
    steps = [np.abs(loop.frame(i + 1).astype(int) - loop.frame(i).astype(int)).mean() for i in range(len(loop) - 1)]
    seam = np.abs(loop.frame(0).astype(int) - loop.frame(len(loop) - 1).astype(int)).mean()
    assert seam <= 3 * np.median(steps) + 1.0
    # With a clock, the loop frame follows time at the video's rate, whatever the render rate.
    now = [100.0]
    timed = LoopSynth(loop, MouthGenerator(a.generator, prefer_gpu=False), a.crop, clock=lambda: now[0])
    shown = []
    for t in (0.0, 0.4, 1.2, 2.5, len(loop) + 0.2):
        now[0] = 100.0 + t / loop.fps
        timed.render(None)
        shown.append(timed._shown)
    assert shown == [0, 0, 1, 2, 0]
    # Scaled to another output size (letterboxed), as the renderer service asks.
    wide = LoopSynth(loop, MouthGenerator(a.generator, prefer_gpu=False), a.crop, out_size=(640, 360))
    f = wide.render(None)
    assert f.shape == (360, 640, 3) and f[:, :100].max() == 0 and wide.landmarks(None)[30, 0] > 140


def test_the_step_plan_is_kept_for_the_same_command_only(shared_data, tmp_path):
    import time

    from models.neural.build import AvatarBuilder, BuildOptions
    from models.neural.frames import FrameSet

    from .neural_helpers import grid_clip

    frames = FrameSet([grid_clip(shared_data, 32)], 0.2, 0.8)
    lines: list[str] = []

    def builder(**kw):
        b = AvatarBuilder(BuildOptions(videos=(tmp_path / "v.mp4",), name="p", root=tmp_path, size=32, ngf=8, batch=2,
                                       device="cpu", **kw), say=lines.append)
        b.work.mkdir(parents=True, exist_ok=True)
        b._stage_t0 = time.time()
        return b

    steps, step_s = builder(steps=7).plan_steps(frames)
    assert steps == 7 and set(step_s) == {"temporal", "pix2pix"} and all(v > 0 for v in step_s.values())
    plan = tmp_path / "p" / "work" / "plan.json"
    saved = json.loads(plan.read_text())
    saved["step_s"] = {"temporal": 123.0, "pix2pix": 456.0}  # the saved plan, not a new timing, is what a rerun gets
    plan.write_text(json.dumps(saved))
    assert builder(steps=7).plan_steps(frames) == (7, {"temporal": 123.0, "pix2pix": 456.0})
    steps, _ = builder(minutes=0.5).plan_steps(frames)  # another command: a new plan from the budget
    assert steps == 50 and any("new plan" in line for line in lines) and any("budget 0.5 min" in line for line in lines)
    assert json.loads(plan.read_text())["minutes"] == 0.5


def test_the_time_dependent_model_trains_from_pix2pix_half_way(tmp_path):
    from models.neural.build import AvatarBuilder, BuildOptions

    def schedule(**kw):
        return AvatarBuilder(BuildOptions(videos=(tmp_path / "v.mp4",), name="p", root=tmp_path, size=32, device="cpu",
                                          **kw)).schedule(10)

    # pix2pix first, snapshotted at step 5, on to 10 for the comparison; the temporal model trains 5 -> 10 from it
    assert schedule() == [("pix2pix", "pix2pix", 0.0, 0, 5), ("pix2pix", "pix2pix", 0.0, 5, 10),
                          ("temporal", "temporal", 100.0, 5, 10)]
    assert schedule(compare=False) == [("pix2pix", "pix2pix", 0.0, 0, 5), ("temporal", "temporal", 100.0, 5, 10)]
    assert schedule(warm_start=0.0) == [("temporal", "temporal", 100.0, 0, 10), ("pix2pix", "pix2pix", 0.0, 0, 10)]
    assert schedule(mode="pix2pix") == [("pix2pix", "pix2pix", 0.0, 0, 10)]


def test_the_lip_sync_fine_tune_is_validated_on_training_speech_only(shared_data, tmp_path):
    """The validation stretch is the end of the training speech before the held-out block; the
    fine-tune keeps the step that scores best there, the untouched base when nothing beats it."""
    from dataclasses import replace

    from models.neural.build import SHIPPED_LIPSYNC, AvatarBuilder, BuildOptions
    from models.neural.finetune import finetune

    from .neural_helpers import grid_clip

    clip = grid_clip(shared_data, 32)  # 74 frames
    b = AvatarBuilder(BuildOptions(videos=(tmp_path / "v.mp4",), name="p", root=tmp_path, size=32, device="cpu",
                                   heldout=0.2, heldout_at=0.8, lipsync_val=0.3))
    long = replace(clip, landmarks=np.concatenate([clip.landmarks] * 3), crops=np.concatenate([clip.crops] * 3))
    (i, a, v), = b.lipsync_spans([long])[0]
    (j, va, vb), = b.lipsync_spans([long])[1]
    held = int(round(0.8 * len(long)))
    assert (i, j, a) == (0, 0, 0) and v == va and vb == held and vb - va == round(0.3 * held)
    assert b.lipsync_spans([clip]) == ([(0, 0, 59)], [])  # too short to spare 2 s for validation
    material = clip.lipsync_clip()
    kept = finetune(SHIPPED_LIPSYNC, [material], tmp_path / "a.onnx", steps=30, lr=3e-3, val=[material], eval_every=10)
    assert [k for k, _ in kept["val_curve"]] == [0, 10, 20, 30] and kept["kept_step"] > 0
    assert round(kept["val_corr_kept"], 4) == max(v for _, v in kept["val_curve"]) > kept["val_corr_before"]
    still = finetune(SHIPPED_LIPSYNC, [material], tmp_path / "b.onnx", steps=4, lr=0.0, val=[material], eval_every=2)
    assert still["kept_step"] == 0 and still["opening_corr_after"] == pytest.approx(still["opening_corr_before"])


def test_a_recording_whose_sound_comes_late_is_found_out(shared_data):
    from dataclasses import replace

    from models.neural.dataset import audio_lag

    from .neural_helpers import grid_clip

    clip = grid_clip(shared_data, 32)
    lag, info = audio_lag(clip, [(0, len(clip))])
    assert abs(lag) <= 1, info
    late = replace(clip, audio=np.concatenate([np.zeros(3 * 640, np.float32), clip.audio]))  # 3 frames late
    lag, info = audio_lag(late, [(0, len(clip))])
    assert lag in (2, 3, 4) and info["corr_best"] > info["corr_0"], info
    # the lip-sync fine-tune's material takes the sound of the same frames as the picture
    seg = late.segment(10, 60, lag)
    assert len(seg) == 50 and len(seg.audio) == 50 * 640
