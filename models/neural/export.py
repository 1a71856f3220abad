"""Export a trained generator to ONNX and check parity with torch.

``python -m models.neural.export CKPT OUT.onnx``. The graph takes uint8-free float tensors in
[-1, 1], BGR channel order, names its inputs (``drawing``, ``previous`` in temporal mode,
``reference``) and carries its own crop and network settings as metadata (key ``neural``,
JSON), so the renderer needs nothing else. ``--fp16`` also writes ``OUT_fp16.onnx`` (float16
weights and arithmetic, float32 inputs and outputs) for the CUDA provider.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

from .. import onnx_export
from .networks import UNetGenerator

log = logging.getLogger(__name__)
OPSET = onnx_export.OPSET


def input_names(g: UNetGenerator) -> list[str]:
    return ["drawing"] + (["previous"] if g.cfg.mode == "temporal" else []) + (["reference"] if g.cfg.use_reference else [])


class _Named(torch.nn.Module):
    """Positional wrapper: the exported graph has exactly the inputs the mode uses."""

    def __init__(self, g: UNetGenerator) -> None:
        super().__init__()
        self.g, self.names = g, input_names(g)

    def forward(self, *xs):
        kw = dict(zip(self.names, xs))
        return self.g(kw["drawing"], kw.get("previous"), kw.get("reference"))


def export(g: UNetGenerator, crop: dict, out: Path, extra: dict | None = None, fp16: bool = False) -> float:
    """Write ``out``; return the max |onnx - torch| on random inputs (batch 1 and 3)."""
    import onnx

    s = g.cfg.size
    names = input_names(g)
    meta = {"net": g.cfg.to_dict(), "crop": crop, "inputs": names, "range": [-1, 1], "channels": "bgr", **(extra or {})}
    # Instance norm "training mode" notes: the graph is built in eval mode.
    onnx_export.export(_Named(g.eval()), tuple(torch.zeros(1, 3, s, s) for _ in names), out, names, ["mouth"],
                       {n: {0: "batch"} for n in [*names, "mouth"]}, {"neural": meta}, ignore_warnings="")
    worst = parity(g, out)
    log.info("ONNX parity %s: max |diff| = %.2e", out.name, worst)
    if fp16:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        half = convert_float_to_float16(onnx.load(str(out)), keep_io_types=True)
        onnx.save(half, str(fp16_path(out)))
    return worst


def fp16_path(path: Path) -> Path:
    return path.with_name(path.stem + "_fp16" + path.suffix)


def parity(g: UNetGenerator, path: Path, batches: tuple[int, ...] = (1, 3)) -> float:
    rng = np.random.default_rng(0)
    cases = [{n: rng.uniform(-1, 1, (b, 3, g.cfg.size, g.cfg.size)).astype(np.float32) for n in input_names(g)}
             for b in batches]
    return onnx_export.parity(_Named(g.eval()), path, cases, threads=1)


def main(argv: list[str] | None = None) -> int:
    from .train import load_generator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--fp16", action="store_true", help="also write OUT_fp16.onnx for the CUDA provider")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    g, ckpt = load_generator(args.checkpoint)
    worst = export(g, ckpt["crop"], args.out, {"data": ckpt.get("data", {})}, fp16=args.fp16)
    return onnx_export.within(worst, args.tolerance, str(args.out))


if __name__ == "__main__":
    sys.exit(main())
