"""Fine-tune the audio -> landmarks model (``models.lipsync``) on one person's own speech.

Starts from a lip-sync training checkpoint, continues with that person's clips only (the same
examples, augmentation and loss as ``models.lipsync.train``) at a lower learning rate, and
exports the result with the lip-sync exporter (ONNX + parity), so the renderer's learned driver
loads it unchanged.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from assistant.face.audio_features import FeatureConfig
from assistant.face.geometry import mouth_opening
from models.lipsync.augment import AugmentConfig
from models.lipsync.config import TargetConfig, TrainConfig
from models.lipsync.dataset import Clip
from models.lipsync.network import load_checkpoint
from models.lipsync.train import batch, corr, example, loss_fn, predict_clip

log = logging.getLogger(__name__)


def finetune(base: Path, clips: list[Clip], out_onnx: Path, steps: int = 150, lr: float = 5e-4, batch_size: int = 8,
             seed: int = 0, progress: Callable[[int, int, float, float], None] | None = None) -> dict:
    """Fine-tune ``base`` on ``clips``; write ``out_onnx`` (and ``.pt`` beside it). Returns a summary."""
    from models.lipsync.export import export

    torch.manual_seed(seed)
    model, ckpt = load_checkpoint(base)
    cfg = TrainConfig(net=model.cfg, features=FeatureConfig(**ckpt["features"]),
                      target=TargetConfig(**{k: tuple(v) for k, v in ckpt["target"].items()}), seed=seed)
    rng = np.random.default_rng(seed)
    aug = AugmentConfig()

    def fit() -> float:
        model.eval()
        return float(np.mean([corr(mouth_opening(predict_clip(model, c, cfg)), mouth_opening(c.mouth)) for c in clips]))

    before = fit()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    t0 = time.time()
    for step in range(1, steps + 1):
        model.train()
        x, y, m = batch([example(clips[int(rng.integers(len(clips)))], rng, cfg, aug) for _ in range(batch_size)])
        loss = loss_fn(model(x), y, m, cfg)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if progress and (step % 10 == 0 or step == steps):
            progress(step, steps, loss.item(), (time.time() - t0) / step * (steps - step))
    after = fit()
    model.eval()
    tuned = dict(ckpt, state=model.state_dict(), finetuned={"base": str(base), "clips": [c.name for c in clips], "steps": steps})
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tuned, out_onnx.with_suffix(".pt"))
    worst = export(model, tuned, out_onnx)
    summary = {"base": str(base), "steps": steps, "clips": len(clips), "opening_corr_before": before,
               "opening_corr_after": after, "onnx_parity": worst}
    log.info("lip-sync fine-tuned: opening r %.3f -> %.3f on this person's speech (parity %.1e)", before, after, worst)
    return summary
