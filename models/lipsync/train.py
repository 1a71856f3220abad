"""Train the lip-sync network: ``python -m models.lipsync.train --real build/lipsync/real --synth build/lipsync/synth``.

Real GRID clips (the training split of ``GridSplit``) and synthetic clips are mixed; each
example is a random crop of an augmented clip (varied length: no idle mouth after a few
seconds). Writes a self-describing checkpoint (configs + weights + history) and PNG plots.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from assistant.face.audio_features import FeatureConfig, frame_features
from assistant.face.geometry import mouth_opening
from assistant.face.mouth_shapes import NEUTRAL_MOUTH

from .augment import AugmentConfig, augment
from .config import NetConfig, TrainConfig
from .dataset import SAMPLE_RATE, Clip, features_and_targets, from_unit, load_dir, to_unit
from .network import LipSyncNet

log = logging.getLogger(__name__)
_INNER = (62 - 48, 66 - 48)


def amplitude_scale(mouth: np.ndarray, ref: float | None, q: float = 95.0) -> float:
    """Factor that brings a clip's ``q``-th percentile opening to ``ref`` (1 when ``ref`` is None)."""
    if ref is None:
        return 1.0
    p = float(np.percentile(mouth_opening(mouth), q))
    return float(np.clip(ref / max(p, 1e-3), 0.5, 2.0))


def normalise_amplitude(clip: Clip, ref: float | None) -> Clip:
    """The clip with its offsets from the neutral mouth scaled to the reference amplitude."""
    s = amplitude_scale(clip.mouth, ref)
    if s == 1.0:
        return clip
    mouth = (NEUTRAL_MOUTH + (clip.mouth - NEUTRAL_MOUTH) * s).astype(np.float32)
    return replace(clip, mouth=mouth)


def quiet_example(rng, cfg: TrainConfig):
    """Hiss at -80..-50 dBFS, mouth closed: a quiet room must not open the mouth."""
    n = int(rng.integers(cfg.min_len, cfg.max_len + 1))
    audio = rng.standard_normal(int(n / cfg.features.fps * SAMPLE_RATE)).astype(np.float32)
    audio *= 10 ** (rng.uniform(-80, -50) / 20)
    feats = frame_features(audio, SAMPLE_RATE, cfg.features, n_frames=n)
    return feats, np.repeat(to_unit(NEUTRAL_MOUTH, cfg.target)[None], n, 0)


def example(clip: Clip, rng, cfg: TrainConfig, aug: AugmentConfig | None):
    """One (features, targets) crop of a clip, augmented when ``aug`` is given."""
    if aug is not None:
        if rng.random() < cfg.p_quiet:
            return quiet_example(rng, cfg)
        audio, mouth = augment(clip, rng, aug)
    else:
        audio, mouth = clip.audio, clip.mouth
    n = min(len(mouth), int(len(audio) / SAMPLE_RATE * cfg.features.fps))
    feats = frame_features(audio, SAMPLE_RATE, cfg.features, n_frames=n)
    targ = to_unit(mouth[:n], cfg.target)
    length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
    if n > length:
        s = int(rng.integers(0, n - length + 1))
        feats, targ = feats[s : s + length], targ[s : s + length]
    return feats, targ


def full_example(clip: Clip, rng, cfg: TrainConfig, aug: AugmentConfig | None):
    """(features, targets) of a whole clip, augmented when ``aug`` is given (no crop, no hiss)."""
    return example(clip, rng, replace(cfg, min_len=10**6, max_len=10**6, p_quiet=0.0), aug)


def build_bank(clips: list[Clip], cfg: TrainConfig, n_aug: int, seed: int = 0, cache: Path | None = None,
               progress: bool = True) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Augmented versions of every clip, features and (amplitude-normalised) targets computed once.

    Version 0 is the clip as recorded, versions 1..n_aug are augmented. Augmentation and the
    features dominate a training step on CPU; computing them once lets every cross-validation
    fold (and the pretraining) draw from the same versions. With ``cache`` each clip's versions
    are stored as one ``.npz`` keyed by its name, ``n_aug``, ``seed`` and ``cfg.amp_ref``.
    """
    bank = {}
    aug = AugmentConfig()
    it = clips
    if progress:
        from tqdm import tqdm

        it = tqdm(clips, desc="bank", unit="clip", leave=False)
    for i, clip in enumerate(it):
        path = cache / f"{clip.name}_a{n_aug}_s{seed}_r{cfg.amp_ref}.npz" if cache else None
        if path is not None and path.is_file():
            z = np.load(path)
            cuts = np.cumsum(z["lengths"])[:-1]
            bank[clip.name] = list(zip(np.split(z["feats"], cuts), np.split(z["targs"], cuts)))
            continue
        rng = np.random.default_rng([seed, i, len(clip.audio)])
        c = normalise_amplitude(clip, cfg.amp_ref)
        versions = [full_example(c, rng, cfg, None)] + [full_example(c, rng, cfg, aug) for _ in range(n_aug)]
        bank[clip.name] = versions
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, feats=np.concatenate([f for f, _ in versions]), targs=np.concatenate([t for _, t in versions]),
                     lengths=np.array([len(f) for f, _ in versions]))
    return bank


def crop(feats: np.ndarray, targ: np.ndarray, rng, cfg: TrainConfig):
    length = int(rng.integers(cfg.min_len, cfg.max_len + 1))
    if len(feats) > length:
        s = int(rng.integers(0, len(feats) - length + 1))
        return feats[s : s + length], targ[s : s + length]
    return feats, targ


def batch(items):
    """Pad to the longest; mask marks real frames."""
    t = max(len(f) for f, _ in items)
    x = np.zeros((len(items), t, items[0][0].shape[1]), np.float32)
    y = np.zeros((len(items), t, items[0][1].shape[1]), np.float32)
    m = np.zeros((len(items), t), np.float32)
    for i, (f, g) in enumerate(items):
        x[i, : len(f)], y[i, : len(g)], m[i, : len(f)] = f, g, 1
    return torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(m)


def loss_fn(pred, targ, mask, cfg: TrainConfig):
    """Landmark MSE + inner-lip opening MSE (what we are judged on) + frame-to-frame velocity MSE."""
    w = mask[..., None]
    denom = mask.sum() + 1e-6
    mse = (((pred - targ) ** 2) * w).sum() / denom / pred.shape[-1]

    def opening(v):
        top, bot = v[..., 2 * _INNER[0] + 1], v[..., 2 * _INNER[1] + 1]
        return bot - top

    op = (((opening(pred) - opening(targ)) ** 2) * mask).sum() / denom
    vm = mask[:, 1:] * mask[:, :-1]
    vel = ((((pred[:, 1:] - pred[:, :-1]) - (targ[:, 1:] - targ[:, :-1])) ** 2) * vm[..., None]).sum() / (vm.sum() + 1e-6) / pred.shape[-1]
    total = mse + 4.0 * op + 2.0 * vel
    if cfg.corr_weight > 0:
        po, to = opening(pred), opening(targ)
        n = mask.sum(1) + 1e-6
        pc = (po - (po * mask).sum(1, keepdim=True) / n[:, None]) * mask
        tc = (to - (to * mask).sum(1, keepdim=True) / n[:, None]) * mask
        r = (pc * tc).sum(1) / torch.sqrt((pc**2).sum(1) * (tc**2).sum(1) + 1e-8)
        active = ((tc**2).sum(1) > 1e-6).float()  # a crop with a still mouth has no correlation to learn
        total = total + cfg.corr_weight * ((1 - r) * active).sum() / (active.sum() + 1e-6)
    return total


def feature_stats(clips: list[Clip], fcfg: FeatureConfig, model: LipSyncNet | None = None):
    """Mean/std of the features the network's first layer sees (after utterance normalisation)."""
    fs = []
    for c in clips:
        f = frame_features(c.audio, SAMPLE_RATE, fcfg, n_frames=len(c.mouth))
        if model is not None:
            with torch.no_grad():
                f = model.normalise_utterance(torch.from_numpy(f)[None])[0].numpy()
        fs.append(f)
    f = np.concatenate(fs)
    return f.mean(0), f.std(0)


def calibrate_gain(model: LipSyncNet, clips: list[Clip], cfg: TrainConfig, q: float = 95.0) -> float:
    """Set ``model.out_gain`` so that the pooled ``q``-th percentile of the predicted opening on
    ``clips`` matches that of their measured (unnormalised) opening; returns the gain."""
    if not clips:
        return float(model.out_gain)
    model.eval()
    model.out_gain.fill_(1.0)
    real = np.percentile(np.concatenate([mouth_opening(c.mouth) for c in clips]), q)
    neutral = from_unit(model.neutral_unit.numpy(), cfg.target)
    base = [predict_clip(model, c, cfg) for c in clips]  # the gain scales offsets from neutral
    best, best_err = 1.0, np.inf
    for g in np.linspace(0.5, 3.0, 251):
        pred = np.percentile(np.concatenate([mouth_opening(neutral + g * (m - neutral)) for m in base]), q)
        if abs(pred - real) < best_err:
            best, best_err = float(g), abs(pred - real)
    model.out_gain.fill_(best)
    return best


def predict_clip(model: LipSyncNet, clip: Clip, cfg: TrainConfig) -> np.ndarray:
    """(frames, 20, 2) canonical mouths the network predicts for a clip's audio."""
    feats, _ = features_and_targets(clip, cfg.features, cfg.target)
    with torch.no_grad():
        y = model(torch.from_numpy(feats)[None])[0].numpy()
    return from_unit(y, cfg.target)


def corr(a, b) -> float:
    if np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def train(cfg: TrainConfig, real: list[Clip], synth: list[Clip], out: Path, val_real: list[Clip], steps_per_epoch: int = 16,
          progress: bool = True, init: Path | None = None, calibrate: bool = True, bank: dict | None = None) -> dict:
    """Train (or fine-tune from ``init``) and save a checkpoint at ``out``; returns the history.

    Real clips are drawn with probability proportional to the square root of their length (a
    60 s recording counts more than a 3 s one, not 20 times more). With ``cfg.amp_ref`` the
    targets are speaker-normalised and, when ``calibrate``, the output gain is then fitted so
    that the predicted opening spans what the real training clips measure. With ``bank``
    (``build_bank`` over real and synthetic clips), examples are crops of its precomputed
    versions instead of being augmented on the fly.
    """
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    synth = [synth[i] for i in np.random.default_rng(12345).permutation(len(synth))]  # fixed split, any order in
    n_val = max(1, len(synth) // 20) if synth else 0
    val_synth, train_synth = synth[:n_val], synth[n_val:]
    pool_real = [normalise_amplitude(c, cfg.amp_ref) for c in real]
    pool_syn = [normalise_amplitude(c, cfg.amp_ref) for c in train_synth]
    w_real = np.sqrt([len(c.mouth) for c in pool_real]) if pool_real else np.zeros(0)
    w_real = w_real / w_real.sum() if len(w_real) else w_real
    model = LipSyncNet(cfg.net, cfg.target)
    if init is not None:  # fine-tune: weights and feature normalisation of a pretrained run
        state = torch.load(init, map_location="cpu", weights_only=False)["state"]
        state["out_gain"] = torch.ones(())  # the gain is fitted again for the new data
        model.load_state_dict(state)
    else:
        model.set_normalisation(*feature_stats((real + train_synth)[:400], cfg.features, model))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.1)
    aug = AugmentConfig()
    vrng = np.random.default_rng(123)
    val_items = [example(c, vrng, replace(cfg, min_len=10**6, max_len=10**6), None)
                 for c in [normalise_amplitude(c, cfg.amp_ref) for c in val_synth + val_real]]
    history = {"epoch": [], "train": [], "val": [], "val_real_corr": []}
    t0 = time.time()
    for epoch in range(cfg.epochs):
        model.train()
        losses = []
        for _ in range(steps_per_epoch):
            items = []
            for _ in range(cfg.batch):
                if pool_real and (not pool_syn or rng.random() < cfg.real_fraction):
                    clip = pool_real[rng.choice(len(pool_real), p=w_real)]
                else:
                    clip = pool_syn[rng.integers(len(pool_syn))]
                if bank is not None and rng.random() >= cfg.p_quiet:
                    versions = bank[clip.name]
                    items.append(crop(*versions[rng.integers(len(versions))], rng, cfg))
                elif bank is not None:
                    items.append(quiet_example(rng, cfg))
                else:
                    items.append(example(clip, rng, cfg, aug))
            x, y, m = batch(items)
            loss = loss_fn(model(x, m), y, m, cfg)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            vl = [float(loss_fn(model(batch([it])[0]), *batch([it])[1:], cfg)) for it in val_items] if val_items else [float("nan")]
        vc = [corr(mouth_opening(predict_clip(model, c, cfg)), mouth_opening(c.mouth)) for c in val_real]
        history["epoch"].append(epoch + 1)
        history["train"].append(float(np.mean(losses)))
        history["val"].append(float(np.mean(vl)))
        history["val_real_corr"].append(float(np.mean(vc)) if vc else float("nan"))
        eta = (time.time() - t0) / (epoch + 1) * (cfg.epochs - epoch - 1)
        if progress:
            print(f"epoch {epoch + 1}/{cfg.epochs} train {history['train'][-1]:.5f} val {history['val'][-1]:.5f} "
                  f"val_real_corr {history['val_real_corr'][-1]:.3f} ETA {eta:.0f}s", file=sys.stderr, flush=True)
    gain = calibrate_gain(model, real, cfg) if calibrate and cfg.amp_ref is not None and real else 1.0
    history["out_gain"] = gain
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"net": cfg.net.__dict__, "target": cfg.target.__dict__, "features": cfg.features.to_dict(),
                "train": cfg.to_dict(), "state": model.state_dict(), "history": history,
                "data": {"real": [c.name for c in real], "val_real": [c.name for c in val_real], "synth": len(train_synth),
                         "init": str(init) if init else None, "out_gain": gain}}, out)
    log.info("saved %s (output gain %.2f)", out, gain)
    return history


def plot(history: dict, model: LipSyncNet, clip: Clip | None, cfg: TrainConfig, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["epoch"], history["train"], label="train")
    ax.plot(history["epoch"], history["val"], label="validation")
    ax.set_xlabel("epoch"), ax.set_ylabel("loss"), ax.set_yscale("log"), ax.legend(), ax.set_title("lip-sync loss")
    fig.tight_layout(), fig.savefig(out_dir / "loss.png", dpi=90), plt.close(fig)
    if clip is not None:
        pred = mouth_opening(predict_clip(model, clip, cfg))
        true = mouth_opening(clip.mouth)
        fig, ax = plt.subplots(figsize=(7, 3))
        t = np.arange(len(true)) / clip.fps
        ax.plot(t, true, label="measured (dlib)"), ax.plot(t, pred, label="predicted")
        ax.set_xlabel("s"), ax.set_ylabel("inner-lip opening"), ax.legend()
        ax.set_title(f"{clip.name} (never trained on): r = {corr(pred, true):.2f}")
        fig.tight_layout(), fig.savefig(out_dir / f"opening_{clip.name}.png", dpi=90), plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", type=Path, default=Path("build/lipsync/real"), help="dataset.py output")
    ap.add_argument("--synth", type=Path, default=Path("build/lipsync/synth"), help="synth.py output")
    ap.add_argument("--out", type=Path, default=Path("build/lipsync/run/lipsync.pt"))
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--steps", type=int, default=16, help="batches per epoch")
    ap.add_argument("--hidden", type=int, default=NetConfig.hidden)
    ap.add_argument("--lookahead", type=int, default=0, help="0: bidirectional; L>0: streaming, L frames ahead")
    ap.add_argument("--real-fraction", type=float, default=TrainConfig.real_fraction)
    ap.add_argument("--max-synth", type=int, default=100000)
    ap.add_argument("--plot-clip", default="", help="held-out real clip to plot (never trained on)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--include-val", action="store_true", help="also train on the validation clip (final refit)")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--init", type=Path, default=None, help="checkpoint to fine-tune (same --hidden/--lookahead)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = TrainConfig(net=NetConfig(hidden=args.hidden, lookahead=args.lookahead), epochs=args.epochs,
                      real_fraction=args.real_fraction, seed=args.seed, lr=args.lr)
    real_all = load_dir(args.real) if args.real.is_dir() else []
    real = [c for c in real_all if c.name in cfg.split.train]
    val_real = [c for c in real_all if c.name in cfg.split.val]
    if args.include_val:
        real, val_real = real + val_real, []
    synth = load_dir(args.synth)[: args.max_synth] if args.synth.is_dir() else []
    if not real and not synth:
        log.error("no training clips in %s or %s", args.real, args.synth)
        return 2
    log.info("training on %d real + %d synthetic clips, validating on %s", len(real), len(synth), [c.name for c in val_real])
    history = train(cfg, real, synth, args.out, val_real, args.steps, init=args.init)
    model = LipSyncNet(cfg.net, cfg.target)
    model.load_state_dict(torch.load(args.out, weights_only=False)["state"])
    model.eval()
    plot_clip = next((c for c in real_all if c.name == args.plot_clip), None)
    plot(history, model, plot_clip, cfg, args.out.parent)
    (args.out.parent / "history.json").write_text(json.dumps(history))
    return 0


if __name__ == "__main__":
    sys.exit(main())
