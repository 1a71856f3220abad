"""Train the mouth generator: ``python -m models.neural.train --data build/neural/grid64 --mode temporal``.

``MouthGAN`` follows pix2pix's training contract (``set_input``, ``forward``,
``optimize_parameters``). In ``temporal`` mode each step generates two consecutive frames, the
second from the first's output, as "Everybody Dance Now" does: the generator learns to continue
its own previous frame, and a second PatchGAN judges consecutive frame pairs. ``pix2pix`` mode
generates the two frames independently and has only the image discriminator.

Training is resumable: a checkpoint (configs, weights, optimiser states, random states, history)
is written atomically every ``checkpoint_every`` steps and at the end; running the same command
again continues from it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from .config import CropConfig, NetConfig, TrainConfig
from .dataset import FaceClip
from .frames import FrameSet
from .networks import PatchDiscriminator, build_generator, discriminator_layers, init_weights

log = logging.getLogger(__name__)


class MouthGAN:
    """Generator, discriminators, their optimisers and losses."""

    def __init__(self, cfg: TrainConfig, device: str = "cpu") -> None:
        self.cfg, self.device = cfg, torch.device(device)
        net = cfg.net
        self.temporal = net.mode == "temporal"
        self.G = build_generator(net)
        layers = discriminator_layers(net.size)
        self.D_img = PatchDiscriminator(6, net.ndf, layers)
        self.D_temp = PatchDiscriminator(12, net.ndf, layers) if self.temporal else None
        for d in self.discriminators:
            init_weights(d)
        for m in [self.G, *self.discriminators]:
            m.to(self.device)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_D = torch.optim.Adam([p for d in self.discriminators for p in d.parameters()], lr=cfg.lr, betas=cfg.betas)
        self.gan = nn.MSELoss()  # LSGAN: steadier than the log loss on small data

    @property
    def discriminators(self) -> list[nn.Module]:
        return [self.D_img] + ([self.D_temp] if self.D_temp is not None else [])

    def set_input(self, batch: dict[str, torch.Tensor], start_real: torch.Tensor | None = None) -> None:
        """``start_real``: per sample, start the pair from the true frame t-2 (else the reference)."""
        self.b = batch = {k: v.to(self.device) for k, v in batch.items()}
        if start_real is None:
            start_real = torch.zeros(len(batch["d"]), dtype=torch.bool)
        m = start_real.to(self.device).view(-1, 1, 1, 1)
        self.start = torch.where(m, batch["before"], batch["ref"])

    def forward(self) -> None:
        b = self.b
        if self.temporal:
            self.fake_prev = self.G(b["d_prev"], self.start, b["ref"])
            self.fake = self.G(b["d"], self.fake_prev, b["ref"])
        else:
            self.fake_prev = self.G(b["d_prev"], None, b["ref"])
            self.fake = self.G(b["d"], None, b["ref"])

    def _adv(self, d: nn.Module, real: bool, *images) -> torch.Tensor:
        score = d(*images)
        return self.gan(score, torch.full_like(score, 1.0 if real else 0.0))

    def optimize_parameters(self) -> dict[str, float]:
        b = self.b
        self.forward()
        # Discriminators: real pairs vs the generator's (detached) pairs.
        self.opt_D.zero_grad()
        fp, f = self.fake_prev.detach(), self.fake.detach()
        loss_d = 0.25 * (self._adv(self.D_img, True, b["d"], b["real"]) + self._adv(self.D_img, True, b["d_prev"], b["real_prev"])
                         + self._adv(self.D_img, False, b["d"], f) + self._adv(self.D_img, False, b["d_prev"], fp))
        if self.D_temp is not None:
            loss_d = loss_d + 0.5 * (self._adv(self.D_temp, True, b["d_prev"], b["d"], b["real_prev"], b["real"])
                                     + self._adv(self.D_temp, False, b["d_prev"], b["d"], fp, f))
        loss_d.backward()
        self.opt_D.step()
        # Generator: fool both, stay close to the truth in L1.
        self.opt_G.zero_grad()
        for d in self.discriminators:
            d.requires_grad_(False)
        adv = 0.5 * (self._adv(self.D_img, True, b["d"], self.fake) + self._adv(self.D_img, True, b["d_prev"], self.fake_prev))
        if self.D_temp is not None:
            adv = adv + self.cfg.temporal_weight * self._adv(self.D_temp, True, b["d_prev"], b["d"], self.fake_prev, self.fake)
        l1 = 0.5 * ((self.fake - b["real"]).abs().mean() + (self.fake_prev - b["real_prev"]).abs().mean())
        loss_g = adv + self.cfg.l1_weight * l1
        out = {}
        cfg = self.cfg
        if cfg.feature_matching > 0:
            fm = 0.5 * (self._feature_match(b["d"], self.fake, b["real"]) + self._feature_match(b["d_prev"], self.fake_prev, b["real_prev"]))
            loss_g = loss_g + cfg.feature_matching * fm
            out["fm"] = fm.item()
        if (cfg.mouth_l1 > 0 or cfg.edge_l1 > 0) and "m" in b:
            lips = 0.5 * (_masked_l1(self.fake, b["real"], b["m"]) + _masked_l1(self.fake_prev, b["real_prev"], b["m_prev"]))
            edges = 0.5 * (_masked_l1(*_gradients(self.fake, b["real"]), _grad_mask(b["m"]))
                           + _masked_l1(*_gradients(self.fake_prev, b["real_prev"]), _grad_mask(b["m_prev"])))
            loss_g = loss_g + cfg.mouth_l1 * lips + cfg.edge_l1 * edges
            out["lips"], out["edges"] = lips.item(), edges.item()
        if self.temporal and self.cfg.temporal_l1 > 0:
            change = ((self.fake - self.fake_prev) - (b["real"] - b["real_prev"])).abs().mean()
            loss_g = loss_g + self.cfg.temporal_l1 * change
        loss_g.backward()
        self.opt_G.step()
        for d in self.discriminators:
            d.requires_grad_(True)
        return {"g": loss_g.item(), "l1": l1.item(), "adv": adv.item(), "d": loss_d.item(), **out}

    def _feature_match(self, drawing: torch.Tensor, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            want = self.D_img.features(drawing, real)
        got = self.D_img.features(drawing, fake)
        return sum((g - w).abs().mean() for g, w in zip(got[:-1], want[:-1])) / max(1, len(got) - 1)

    # --- checkpoints ------------------------------------------------------------------------
    def state(self) -> dict:
        def cpu(sd):
            return {k: v.cpu() if torch.is_tensor(v) else v for k, v in sd.items()}

        return {"G": cpu(self.G.state_dict()), "D_img": cpu(self.D_img.state_dict()),
                "D_temp": cpu(self.D_temp.state_dict()) if self.D_temp is not None else None,
                "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict()}

    def load_state(self, s: dict) -> None:
        self.G.load_state_dict(s["G"])
        self.D_img.load_state_dict(s["D_img"])
        if self.D_temp is not None:
            self.D_temp.load_state_dict(s["D_temp"])
        self.opt_G.load_state_dict(s["opt_G"])
        self.opt_D.load_state_dict(s["opt_D"])


def _masked_l1(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean |a - b| over the pixels where ``mask`` (N, 1, H, W) is 1."""
    return ((a - b).abs() * mask).sum() / (mask.sum() * a.shape[1] + 1e-6)


def _gradients(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical finite differences of both images, stacked on the channels
    (cropped to a common (H-1, W-1) grid)."""
    def g(x):
        return torch.cat([x[..., 1:, 1:] - x[..., 1:, :-1], x[..., 1:, 1:] - x[..., :-1, 1:]], dim=1)

    return g(a), g(b)


def _grad_mask(mask: torch.Tensor) -> torch.Tensor:
    return mask[..., 1:, 1:]


def train_config_from(d: dict) -> TrainConfig:
    d = dict(d)
    d["net"] = NetConfig(**d["net"])
    d["betas"] = tuple(d["betas"])
    return TrainConfig(**d)


def save_checkpoint(path: Path, model: MouthGAN, step: int, crop: CropConfig, rng: np.random.Generator,
                    history: dict, data: dict) -> None:
    """Atomic: a kill while writing leaves the previous checkpoint intact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"train": model.cfg.to_dict(), "net": model.cfg.net.to_dict(), "crop": crop.to_dict(), "step": step,
                "state": model.state(), "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                "history": history, "data": data}, tmp)
    os.replace(tmp, path)


def warm_start(pix2pix_ckpt: Path, cfg: TrainConfig, out: Path, crop: CropConfig) -> int:
    """Start a time-dependent model from a plain pix2pix checkpoint (progressive training, as
    vid2vid does): the generator's weights are copied, the first convolution's filters for the new
    ``previous`` input start at zero (so the model begins as exactly that pix2pix generator, and
    learns to use its previous frame from there), the image discriminator is copied and the
    temporal one starts fresh, as do the optimisers. Writes a checkpoint at ``out`` at the pix2pix
    checkpoint's step (training then continues from it to ``cfg.steps``); returns that step.
    """
    src = torch.load(pix2pix_ckpt, map_location="cpu", weights_only=False)
    if src["net"]["mode"] != "pix2pix" or cfg.net.mode != "temporal":
        raise ValueError(f"warm start goes from a pix2pix checkpoint to a temporal model, not {src['net']['mode']}"
                         f" -> {cfg.net.mode}")
    theirs = NetConfig(**src["net"])
    if (theirs.size, theirs.ngf, theirs.ndf, theirs.use_reference) != (cfg.net.size, cfg.net.ngf, cfg.net.ndf, cfg.net.use_reference):
        raise ValueError(f"{pix2pix_ckpt} holds another network ({src['net']}) than {cfg.net.to_dict()}")
    torch.manual_seed(cfg.seed + 1)  # the fresh temporal discriminator's initialisation, reproducibly
    model = MouthGAN(cfg)
    g = dict(src["state"]["G"])
    first = "downs.0.0.weight"
    w = g[first]  # (out, 3 drawing [+ 3 reference], 4, 4)
    g[first] = torch.cat([w[:, :3], torch.zeros_like(w[:, :3]), w[:, 3:]], dim=1)
    model.G.load_state_dict(g)
    model.D_img.load_state_dict(src["state"]["D_img"])
    step = int(src["step"])
    rng = np.random.default_rng(cfg.seed + 1)
    history = {k: list(v) for k, v in src["history"].items()}
    data = dict(src["data"], warm_start={"from": pix2pix_ckpt.name, "step": step})
    save_checkpoint(out, model, step, crop, rng, history, data)
    return step


def load_generator(path: Path):
    """(generator in eval mode, checkpoint dict) from a training checkpoint."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    g = build_generator(ckpt["net"])
    g.load_state_dict(ckpt["state"]["G"])
    g.eval()
    return g, ckpt


Progress = Callable[[int, int, dict, float], None]


def print_progress(step: int, total: int, losses: dict, eta_s: float) -> None:
    print(f"step {step}/{total} l1 {losses['l1']:.4f} g {losses['g']:.3f} d {losses['d']:.3f} ETA {eta_s:.0f}s",
          file=sys.stderr, flush=True)


def train(frames: FrameSet, cfg: TrainConfig, ckpt_path: Path, crop: CropConfig, progress: Progress | None = print_progress,
          report_every: int = 50, device: str = "cpu") -> MouthGAN:
    """Train (or resume) to ``cfg.steps`` steps; the checkpoint at ``ckpt_path`` is the state.

    ``device``: a torch device (``cuda`` on the GPU machine); checkpoints are stored for the CPU.
    """
    torch.set_num_threads(cfg.threads)
    if cfg.net.size != frames.size:
        raise ValueError(f"network built for {cfg.net.size} px, data is {frames.size} px")
    torch.manual_seed(cfg.seed)
    model = MouthGAN(cfg, device)
    rng = np.random.default_rng(cfg.seed)
    history: dict[str, list] = {"step": [], "l1": [], "g": [], "d": []}
    step = 0
    data = frames.describe()
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["net"] != cfg.net.to_dict():
            raise ValueError(f"{ckpt_path} holds a different network ({ckpt['net']}); delete it or change --out")
        model.load_state(ckpt["state"])
        rng.bit_generator.state = ckpt["rng"]
        torch.set_rng_state(ckpt["torch_rng"])
        history, step = ckpt["history"], int(ckpt["step"])
        data = {**ckpt["data"], **data}  # keeps what the checkpoint adds (``warm_start``)
        log.info("resuming %s at step %d of %d", ckpt_path, step, cfg.steps)
    t0, s0 = time.time(), step
    acc: dict[str, list[float]] = {}
    for g in [model.G, *model.discriminators]:
        g.train()
    while step < cfg.steps:
        batch = frames.batch(rng, cfg.batch)
        start_real = torch.from_numpy(rng.random(cfg.batch) < cfg.real_previous)
        model.set_input(batch, start_real)
        losses = model.optimize_parameters()
        step += 1
        for k, v in losses.items():
            acc.setdefault(k, []).append(v)
        if step % report_every == 0 or step == cfg.steps:
            mean = {k: float(np.mean(v)) for k, v in acc.items()}
            acc = {}
            history["step"].append(step)
            for k in ("l1", "g", "d"):
                history[k].append(mean[k])
            if progress:
                eta = (time.time() - t0) / (step - s0) * (cfg.steps - step)
                progress(step, cfg.steps, mean, eta)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_checkpoint(ckpt_path, model, step, crop, rng, history, data)
    if s0 == cfg.steps:
        log.info("%s already trained (%d steps)", ckpt_path, step)
    model.G.eval()
    model.G.cpu()
    return model


def plot_history(history: dict, out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(history["step"], history["l1"])
    ax[0].set_xlabel("step"), ax[0].set_ylabel("L1 (image in [-1, 1])"), ax[0].set_title(f"{title}: generator L1")
    ax[1].plot(history["step"], history["g"], label="generator")
    ax[1].plot(history["step"], history["d"], label="discriminators")
    ax[1].set_xlabel("step"), ax[1].legend(), ax[1].set_title("losses")
    fig.tight_layout(), fig.savefig(out, dpi=80), plt.close(fig)


def load_clips(folder: Path) -> list[FaceClip]:
    return [FaceClip.load(p) for p in sorted(Path(folder).glob("*.npz"))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("build/neural/data"), help="dataset.py output")
    ap.add_argument("--mode", choices=["temporal", "pix2pix"], default="temporal")
    ap.add_argument("--steps", type=int, default=TrainConfig.steps)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--ngf", type=int, default=NetConfig.ngf)
    ap.add_argument("--temporal-l1", type=float, default=TrainConfig.temporal_l1, help="weight of the frame-change L1 (temporal mode)")
    ap.add_argument("--heldout", type=float, default=0.2, help="fraction of each clip held out (one block)")
    ap.add_argument("--heldout-at", type=float, default=0.4, help="where the held-out block starts (fraction of the clip)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    ap.add_argument("--out", type=Path, default=None, help="checkpoint (default build/neural/run/MODE.pt)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clips = load_clips(args.data)
    if not clips:
        log.error("no clips in %s (run python -m models.neural.dataset first)", args.data)
        return 2
    frames = FrameSet(clips, args.heldout, args.heldout_at)
    cfg = TrainConfig(net=NetConfig(mode=args.mode, size=frames.size, ngf=args.ngf, ndf=args.ngf), steps=args.steps,
                      batch=args.batch, threads=args.threads, checkpoint_every=args.checkpoint_every,
                      temporal_l1=args.temporal_l1)
    out = args.out or Path("build/neural/run") / f"{args.mode}.pt"
    log.info("training %s at %d px on %d frames of %d clips", args.mode, frames.size, frames.train_frames, len(clips))
    model = train(frames, cfg, out, clips[0].crop)
    ckpt = torch.load(out, map_location="cpu", weights_only=False)
    plot_history(ckpt["history"], out.with_suffix(".loss.png"), args.mode)
    (out.with_suffix(".history.json")).write_text(json.dumps(ckpt["history"]))
    del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
