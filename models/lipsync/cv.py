"""Leave-speakers-out cross-validation over every real speaker we have, and the shipped model.

``python -m models.lipsync.cv`` runs, with everything derived cached under ``build/lipsync``:

1. measure the 17 real talking videos (dlib landmarks, ``dataset.clip_from_video``; cached);
2. pretrain on synthetic voices only (no real speaker, so no fold has seen its held-out people);
3. per fold: fine-tune on the real speakers of the other folds (plus synthetic voices),
   calibrate the output gain on them, export ``weights/cv/fold{k}.onnx`` (its held-out speakers
   are in the ONNX metadata: ``bench/lipsync.py`` scores each speaker with the one model that
   never heard or saw them);
4. the shipped model: the same recipe on every real speaker except the three GRID clips of
   ``GridSplit.heldout`` (kept out for the GRID floors), exported to ``weights/lipsync.onnx``.

Stages can be run alone (``--stage pretrain|folds|final``; ``--folds 0 2`` for some folds).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import GridSplit, NetConfig, TrainConfig
from .dataset import Clip

log = logging.getLogger(__name__)

REAL_VIDEOS: dict[str, str] = {
    **{name: f"grid/{name}.mpg" for name in ("bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a",
                                             "lwbsza", "pwij3p", "sbia1a", "sbwe5n", "swiz3n")},
    **{f"retalking{k}": f"wild/retalking{k}.mp4" for k in range(1, 6)},
    "lieu": "single/lieu.mp4",
    "obama": "single/obama.mp4",
}
"""One clip per real speaker (17 speakers), paths under ``shared/data/talking``."""

FOLDS: tuple[tuple[str, ...], ...] = (
    ("bbaf2n", "brbk7n", "retalking1", "lieu"),
    ("lbax4n", "lbbc2a", "retalking2", "obama"),
    ("lrwp9a", "lwbsza", "retalking3"),
    ("pwij3p", "sbia1a", "retalking4"),
    ("sbwe5n", "swiz3n", "retalking5"),
)
"""Whole speakers per fold: two GRID speakers and one in-the-wild speaker each; the two long
single-speaker recordings in different folds, so every fold trains on continuous speech."""

AMP_REF = 0.25
"""Speaker-normalised targets: every clip's 95th-percentile opening is scaled to this (IOD)
during training; the output gain then maps it back to what real training speakers measure."""


def fold_of(name: str) -> int:
    for k, fold in enumerate(FOLDS):
        if name in fold:
            return k
    raise KeyError(f"{name} is in no fold")


def load_real_clips(data: Path, cache: Path, names=None) -> dict[str, Clip]:
    """Every real clip by name, measured from its video once and cached as ``.npz``."""
    from .evaluate import load_clip

    return {n: load_clip(n, data / REAL_VIDEOS[n], cache) for n in (names or REAL_VIDEOS)}


def recipe(stage: str, seed: int = 0, threads: int = 1) -> TrainConfig:
    """Training settings of each stage (one place, so folds and the shipped model share them)."""
    base = TrainConfig(net=NetConfig(kind="tcn", hidden=64, dropout=0.2), amp_ref=AMP_REF, seed=seed, threads=threads, batch=16)
    if stage == "pretrain":
        return replace(base, epochs=30, lr=3e-3, real_fraction=0.0)
    return replace(base, epochs=18, lr=1.5e-3, real_fraction=0.7)


def _fit(stage_cfg: TrainConfig, train_clips: list[Clip], val_clips: list[Clip], synth: list[Clip], out: Path,
         init: Path | None, steps: int, bank: dict) -> Path:
    from .train import train

    train(stage_cfg, train_clips, synth, out, val_clips, steps, init=init, bank=bank)
    return out


def export_fold(ckpt_path: Path, onnx_path: Path, heldout: list[str]) -> float:
    from .export import export
    from .network import load_checkpoint

    model, ckpt = load_checkpoint(ckpt_path)
    ckpt.setdefault("data", {})["heldout"] = list(heldout)
    return export(model, ckpt, onnx_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/talking"))
    ap.add_argument("--cache", type=Path, default=Path("build/lipsync/real"))
    ap.add_argument("--synth", type=Path, default=Path("build/lipsync/synth"))
    ap.add_argument("--work", type=Path, default=Path("build/lipsync/cv"))
    ap.add_argument("--weights", type=Path, default=Path("models/lipsync/weights"))
    ap.add_argument("--stage", choices=["all", "pretrain", "folds", "final"], default="all")
    ap.add_argument("--folds", type=int, nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=32, help="batches per epoch")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared box more only spin)")
    ap.add_argument("--max-synth", type=int, default=100000)
    ap.add_argument("--real-versions", type=int, default=24, help="augmented versions of each real clip")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .dataset import load_dir

    from .train import build_bank

    synth = load_dir(args.synth)[: args.max_synth] if args.synth.is_dir() else []
    bank = build_bank(synth, recipe("finetune"), 2, cache=args.work.parent / "bank")
    clips = {}
    if args.stage != "pretrain":
        clips = load_real_clips(args.data, args.cache)
        bank |= build_bank(list(clips.values()), recipe("finetune"), args.real_versions, cache=args.work.parent / "bank")
    log.info("%d real clips (%.0f s), %d synthetic", len(clips), sum(len(c.mouth) / c.fps for c in clips.values()), len(synth))
    pre = args.work / "pretrain.pt"
    if args.stage in ("all", "pretrain"):
        _fit(recipe("pretrain", threads=args.threads), [], [], synth, pre, None, args.steps, bank)
    if args.stage in ("all", "folds"):
        for k in args.folds if args.folds is not None else range(len(FOLDS)):
            held = list(FOLDS[k])
            train_clips = [c for n, c in clips.items() if n not in held]
            ckpt = _fit(recipe("finetune", seed=k, threads=args.threads), train_clips, [clips[n] for n in held], synth,
                        args.work / f"fold{k}.pt", pre, args.steps, bank)
            worst = export_fold(ckpt, args.weights / "cv" / f"fold{k}.onnx", held)
            log.info("fold %d exported (parity %.1e), held out %s", k, worst, held)
    if args.stage in ("all", "final"):
        held = list(GridSplit().heldout)
        train_clips = [c for n, c in clips.items() if n not in held]
        ckpt = _fit(recipe("finetune", seed=100, threads=args.threads), train_clips, [clips[n] for n in held], synth,
                    args.work / "final.pt", pre, args.steps, bank)
        worst = export_fold(ckpt, args.weights / "lipsync.onnx", held)
        log.info("shipped model exported (parity %.1e)", worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
