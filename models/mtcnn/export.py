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

from .. import onnx_export
from .network import load

log = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parent / "weights"
SHAPES = {"pnet": [(1, 3, 12, 12), (1, 3, 97, 131), (1, 3, 241, 321)], "rnet": [(1, 3, 24, 24), (7, 3, 24, 24)],
          "onet": [(1, 3, 48, 48), (5, 3, 48, 48)]}


def export(name: str, out_dir: Path, data: Path | None = None) -> float:
    """Write ``out_dir/NAME.onnx``; returns the max |onnx - torch| over a few input shapes."""
    net = load(name, data)
    axes = {0: "n", 2: "h", 3: "w"} if name == "pnet" else {0: "n"}
    out_axes = {0: "n", 1: "h", 2: "w"} if name == "pnet" else {0: "n"}
    out = onnx_export.export(net, (torch.zeros(SHAPES[name][0]),), out_dir / f"{name}.onnx", ["image"], ["prob", "box"],
                             {"image": axes, "prob": out_axes, "box": axes})
    rng = np.random.default_rng(0)
    worst = onnx_export.parity(net, out, [{"image": rng.uniform(-1, 1, shape).astype(np.float32)} for shape in SHAPES[name]])
    log.info("%s: ONNX parity max |diff| = %.2e", name, worst)
    return worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path, nargs="?", default=WEIGHTS)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    worst = max(export(n, args.out_dir) for n in ("pnet", "rnet", "onet"))
    return onnx_export.within(worst, args.tolerance, str(args.out_dir))


if __name__ == "__main__":
    sys.exit(main())
