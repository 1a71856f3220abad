"""Export a checkpoint to ONNX and check parity with torch: ``python -m models.lipsync.export CKPT OUT.onnx``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from .. import onnx_export
from .network import LipSyncNet, load_checkpoint

log = logging.getLogger(__name__)


def export(model: LipSyncNet, ckpt: dict, out: Path, check_frames: tuple[int, ...] = (7, 75, 400)) -> float:
    """Write ``out`` with a dynamic time axis and metadata; returns the max |onnx - torch|."""
    dim = model.cfg.in_dim
    meta = {"features": ckpt["features"], "target_lo": list(ckpt["target"]["lo"]), "target_hi": list(ckpt["target"]["hi"]),
            "net": ckpt["net"], "data": ckpt.get("data", {})}
    # "batch size other than 1 with LSTM": we always run batch 1.
    onnx_export.export(model, (torch.randn(1, 50, dim),), out, ["features"], ["mouth"],
                       {"features": {1: "frames"}, "mouth": {1: "frames"}}, {"lipsync": meta},
                       ignore_warnings=".*batch.size.*LSTM")
    rng = np.random.default_rng(0)
    cases = [{"features": (rng.standard_normal((1, n, dim)) * model.feat_std.numpy() + model.feat_mean.numpy()).astype(np.float32)}
             for n in check_frames]
    worst = onnx_export.parity(model, out, cases)
    log.info("ONNX parity: max |diff| = %.2e over %s frames", worst, check_frames)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path, nargs="?", default=Path("models/lipsync/weights/lipsync.onnx"))
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model, ckpt = load_checkpoint(args.checkpoint)
    return onnx_export.within(export(model, ckpt, args.out), args.tolerance, str(args.out))


if __name__ == "__main__":
    sys.exit(main())
