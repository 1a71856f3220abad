"""Export a trained generator to ONNX and check parity with torch.

``python -m models.neural.export CKPT OUT.onnx``. The graph takes uint8-free float tensors in
[-1, 1], BGR channel order, names its inputs (``drawing``, ``previous`` in temporal mode,
``reference``) and carries its own crop and network settings as metadata (key ``neural``,
JSON), so the renderer needs nothing else. ``--fp16`` also writes ``OUT_fp16.onnx`` (float16
weights and arithmetic, float32 inputs and outputs) for the CUDA provider.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from .networks import UNetGenerator

log = logging.getLogger(__name__)
OPSET = 17


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

    g.eval()
    s = g.cfg.size
    names = input_names(g)
    dummy = tuple(torch.zeros(1, 3, s, s) for _ in names)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # instance norm "training mode" notes: the graph is built in eval mode
        warnings.simplefilter("ignore")
        torch.onnx.export(_Named(g), dummy, str(out), input_names=names, output_names=["mouth"],
                          dynamic_axes={n: {0: "batch"} for n in [*names, "mouth"]}, opset_version=OPSET, dynamo=False)
    proto = onnx.load(str(out))
    entry = proto.metadata_props.add()
    entry.key, entry.value = "neural", json.dumps({"net": g.cfg.to_dict(), "crop": crop, "inputs": names,
                                                     "range": [-1, 1], "channels": "bgr", **(extra or {})})
    onnx.save(proto, str(out))
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
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    rng = np.random.default_rng(0)
    worst = 0.0
    for b in batches:
        xs = {n: rng.uniform(-1, 1, (b, 3, g.cfg.size, g.cfg.size)).astype(np.float32) for n in names}
        with torch.no_grad():
            ref = g(torch.from_numpy(xs["drawing"]), torch.from_numpy(xs["previous"]) if "previous" in xs else None,
                    torch.from_numpy(xs["reference"]) if "reference" in xs else None).numpy()
        got = sess.run(None, xs)[0]
        worst = max(worst, float(np.abs(ref - got).max()))
    return worst


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
    if worst > args.tolerance:
        log.error("parity %.2e exceeds %.0e", worst, args.tolerance)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
