"""Fine-tune the audio -> landmarks model (``models.lipsync``) on one person's own speech.

Starts from a lip-sync training checkpoint, continues with that person's clips only (the same
examples, augmentation and loss as ``models.lipsync.train``) at a lower learning rate, and
exports the result with the lip-sync exporter (ONNX + parity), so the renderer's learned driver
loads it unchanged.
"""

from __future__ import annotations

import copy
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
             seed: int = 0, progress: Callable[[int, int, float, float], None] | None = None,
             val: list[Clip] | None = None, eval_every: int = 25) -> dict:
    """Fine-tune ``base`` on ``clips``; write ``out_onnx`` (and ``.pt`` beside it). Returns a summary.

    ``val``: clips of the same person kept out of the fine-tune (the stretch of training speech
    just before the held-out block). Every ``eval_every`` steps the mean opening correlation on
    them is measured, and the weights that scored best, the untouched base included (step 0),
    are the ones exported: early stopping, so a voice the base model already follows is not
    made worse by memorising under a minute of it."""
    from models.lipsync.export import export

    torch.manual_seed(seed)
    model, ckpt = load_checkpoint(base)
    cfg = TrainConfig(net=model.cfg, features=FeatureConfig(**ckpt["features"]),
                      target=TargetConfig(**{k: tuple(v) for k, v in ckpt["target"].items()}), seed=seed)
    rng = np.random.default_rng(seed)
    aug = AugmentConfig()

    def fit(on: list[Clip]) -> float:
        model.eval()
        return float(np.mean([corr(mouth_opening(predict_clip(model, c, cfg)), mouth_opening(c.mouth)) for c in on]))

    before = fit(clips)
    val_curve: list[tuple[int, float]] = []
    best: tuple[float, int, dict] | None = None
    if val:
        val_curve.append((0, fit(val)))
        best = (val_curve[-1][1], 0, copy.deepcopy(model.state_dict()))
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
        if best is not None and (step % eval_every == 0 or step == steps):
            val_curve.append((step, fit(val)))
            if val_curve[-1][1] > best[0]:
                best = (val_curve[-1][1], step, copy.deepcopy(model.state_dict()))
    kept = steps
    if best is not None:
        kept = best[1]
        model.load_state_dict(best[2])
    after = fit(clips)
    model.eval()
    tuned = dict(ckpt, state=model.state_dict(), finetuned={"base": str(base), "clips": [c.name for c in clips], "steps": kept})
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    torch.save(tuned, out_onnx.with_suffix(".pt"))
    worst = export(model, tuned, out_onnx)
    summary = {"base": str(base), "steps": steps, "kept_step": kept, "clips": len(clips), "opening_corr_before": before,
               "opening_corr_after": after, "onnx_parity": worst}
    if val:
        summary.update(val_clips=len(val), val_corr_before=val_curve[0][1], val_corr_kept=best[0] if best else None,
                       val_curve=[(k, round(v, 4)) for k, v in val_curve])
    log.info("lip-sync fine-tuned: opening r %.3f -> %.3f on this person's speech, kept step %d (parity %.1e)", before, after,
             kept, worst)
    return summary
