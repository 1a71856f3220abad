"""Export a checkpoint to ONNX and check parity with torch: ``python -m models.lipsync.export CKPT OUT.onnx``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .network import LipSyncNet, load_checkpoint

log = logging.getLogger(__name__)


def export(model: LipSyncNet, ckpt: dict, out: Path, check_frames: tuple[int, ...] = (7, 75, 400)) -> float:
    """Write ``out`` with a dynamic time axis and metadata; returns the max |onnx - torch|."""
    import onnx
    import onnxruntime as ort

    model.eval()
    dim = model.cfg.in_dim
    dummy = torch.randn(1, 50, dim)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # "batch size other than 1 with LSTM": we always run batch 1
        warnings.filterwarnings("ignore", message=".*batch.size.*LSTM", category=UserWarning)
        torch.onnx.export(model, (dummy,), str(out), input_names=["features"], output_names=["mouth"],
                          dynamic_axes={"features": {1: "frames"}, "mouth": {1: "frames"}}, opset_version=17, dynamo=False)
    proto = onnx.load(str(out))
    meta = {"features": ckpt["features"], "target_lo": list(ckpt["target"]["lo"]), "target_hi": list(ckpt["target"]["hi"]),
            "net": ckpt["net"], "data": ckpt.get("data", {})}
    entry = proto.metadata_props.add()
    entry.key, entry.value = "lipsync", json.dumps(meta)
    onnx.save(proto, str(out))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    worst = 0.0
    rng = np.random.default_rng(0)
    for n in check_frames:
        x = (rng.standard_normal((1, n, dim)) * model.feat_std.numpy() + model.feat_mean.numpy()).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        got = sess.run(None, {"features": x})[0]
        worst = max(worst, float(np.abs(ref - got).max()))
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
    worst = export(model, ckpt, args.out)
    if worst > args.tolerance:
        log.error("parity %.2e exceeds %.0e", worst, args.tolerance)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
