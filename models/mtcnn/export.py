"""Export the MTCNN networks to ONNX and check parity with torch: ``python -m models.mtcnn.export [OUT_DIR]``.

Writes ``pnet.onnx`` (dynamic height and width), ``rnet.onnx`` and ``onet.onnx`` (dynamic batch).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from .network import load

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parent / "weights"
SHAPES = {"pnet": [(1, 3, 12, 12), (1, 3, 97, 131), (1, 3, 241, 321)], "rnet": [(1, 3, 24, 24), (7, 3, 24, 24)],
          "onet": [(1, 3, 48, 48), (5, 3, 48, 48)]}


def export(name: str, out_dir: Path, data: Path | None = None) -> float:
    """Write ``out_dir/NAME.onnx``; returns the max |onnx - torch| over a few input shapes."""
    import onnxruntime as ort

    net = load(name, data)
    out = out_dir / f"{name}.onnx"
    out_dir.mkdir(parents=True, exist_ok=True)
    axes = {0: "n", 2: "h", 3: "w"} if name == "pnet" else {0: "n"}
    out_axes = {0: "n", 1: "h", 2: "w"} if name == "pnet" else {0: "n"}
    torch.onnx.export(net, (torch.zeros(SHAPES[name][0]),), str(out), input_names=["image"], output_names=["prob", "box"],
                      dynamic_axes={"image": axes, "prob": out_axes, "box": axes}, opset_version=17, dynamo=False)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    worst = 0.0
    for shape in SHAPES[name]:
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in net(torch.from_numpy(x))]
        got = sess.run(None, {"image": x})
        worst = max(worst, *(float(np.abs(a - b).max()) for a, b in zip(ref, got)))
    log.info("%s: ONNX parity max |diff| = %.2e", name, worst)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, nargs="?", default=WEIGHTS)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    worst = max(export(n, args.out_dir) for n in ("pnet", "rnet", "onet"))
    if worst > args.tolerance:
        log.error("parity %.2e exceeds %.0e", worst, args.tolerance)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
