"""Held-out evaluation of mouth generators: PSNR, SSIM and temporal flicker of the mouth region.

Each clip's held-out block is generated frame by frame from its true landmark drawings, as the
renderer would: the first frame starts from the clip's reference frame (a training frame), each
next one (temporal mode) from the previous output. Metrics are taken inside the blend mask (the pixels that reach the
screen), in 8-bit units:

- PSNR (dB) and SSIM (mean of the SSIM map inside the mask, on grey levels) against the truth;
- flicker: mean over frames of |(g_t - g_(t-1)) - (r_t - r_(t-1))|, the frame-to-frame change the
  real mouth did not make (0: the generated video changes exactly as the real one does);
- motion ratio: mean |g_t - g_(t-1)| / mean |r_t - r_(t-1)| (1: as much change as the truth).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.face.mouth_crop import blend_mask

from .config import CropConfig
from .dataset import FaceClip

log = logging.getLogger(__name__)

# (drawing, previous or None, reference) uint8 (S, S, 3) -> generated uint8 (S, S, 3)
Generate = Callable[[np.ndarray, "np.ndarray | None", np.ndarray], np.ndarray]


@dataclass
class Scores:
    psnr: float
    ssim: float
    flicker: float
    motion_ratio: float
    frames: int


def mask_of(crop: CropConfig) -> np.ndarray:
    return blend_mask(crop.size, crop.mask_rx, crop.mask_ry, crop.mask_cy, crop.feather) > 0.5


def generate_sequence(generate: Generate, drawings: np.ndarray, reference: np.ndarray, temporal: bool) -> np.ndarray:
    out, prev = [], reference
    for d in drawings:
        g = generate(d, prev if temporal else None, reference)
        out.append(g)
        prev = g
    return np.stack(out)


def scores(gen: np.ndarray, real: np.ndarray, mask: np.ndarray) -> Scores:
    from skimage.metrics import structural_similarity

    g, r = gen.astype(np.float64), real.astype(np.float64)
    mse = float(((g - r) ** 2)[:, mask].mean())
    psnr = 10 * np.log10(255.0**2 / max(mse, 1e-10))
    ssims = []
    for a, b in zip(gen, real):
        ga = a.astype(np.float64) @ [0.114, 0.587, 0.299]
        gb = b.astype(np.float64) @ [0.114, 0.587, 0.299]
        _, smap = structural_similarity(ga, gb, data_range=255.0, full=True, win_size=7)
        ssims.append(smap[mask].mean())
    dg, dr = np.diff(g, axis=0)[:, mask], np.diff(r, axis=0)[:, mask]
    flicker = float(np.abs(dg - dr).mean()) if len(dg) else 0.0
    ratio = float(np.abs(dg).mean() / max(np.abs(dr).mean(), 1e-9)) if len(dg) else 1.0
    return Scores(float(psnr), float(np.mean(ssims)), flicker, ratio, len(gen))


def evaluate(generate: Generate, clips: list[FaceClip], data: dict, temporal: bool) -> dict:
    """Scores per clip and pooled (frame-weighted means) over the held-out blocks.

    ``data``: what a checkpoint records about its split (``FrameSet.describe``): per clip, the
    held-out block ``[start, end)`` and the reference frame.
    """
    per = {}
    for clip, (start, end), ref in zip(clips, data["heldout"], data["references"]):
        if end - start < 2:
            continue
        gen = generate_sequence(generate, clip.drawings[start:end], clip.crops[ref], temporal)
        per[clip.name] = asdict(scores(gen, clip.crops[start:end], mask_of(clip.crop)))
    if not per:
        raise ValueError("no held-out frames to evaluate")
    w = np.array([s["frames"] for s in per.values()], float)
    pooled = {k: float(np.average([s[k] for s in per.values()], weights=w)) for k in ("psnr", "ssim", "flicker", "motion_ratio")}
    pooled["frames"] = int(w.sum())
    return {"pooled": pooled, "clips": per}


def torch_generate(g) -> Generate:
    """A ``Generate`` over a torch generator (evaluation without exporting)."""
    import torch

    from .frames import to_images, to_tensor

    def run(d, prev, ref):
        with torch.no_grad():
            y = g(to_tensor(d[None]), to_tensor(prev[None]) if prev is not None else None, to_tensor(ref[None]))
        return to_images(y)[0]

    return run


def baseline_reference(d, prev, ref):
    """The reference frame repeated: what a face that never moves its mouth scores."""
    return ref


def table(results: dict[str, dict]) -> str:
    """Markdown table of pooled scores per model."""
    rows = ["| model | PSNR (dB) | SSIM | flicker | motion ratio | frames |", "| --- | --- | --- | --- | --- | --- |"]
    for name, r in results.items():
        p = r["pooled"]
        rows.append(f"| {name} | {p['psnr']:.2f} | {p['ssim']:.3f} | {p['flicker']:.2f} | {p['motion_ratio']:.2f} | {p['frames']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    import torch

    from .train import load_clips, load_generator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="+", type=Path, help="training checkpoints to compare")
    ap.add_argument("--data", type=Path, default=Path("build/neural/data"))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    clips = {c.name: c for c in load_clips(args.data)}
    results = {}
    for path in args.checkpoints:
        g, ckpt = load_generator(path)
        names = ckpt["data"]["clips"]
        use = [clips[n] for n in names]
        results[f"{ckpt['net']['mode']} ({path.stem})"] = evaluate(torch_generate(g), use, ckpt["data"],
                                                                   ckpt["net"]["mode"] == "temporal")
    results["reference frame (no model)"] = evaluate(baseline_reference, use, ckpt["data"], False)
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
