"""The avatar's model card: held-out evaluation table, sample strip, and what the numbers mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import FaceClip
from .evaluate import baseline_reference, evaluate, generate_sequence, table, torch_generate


def evaluate_all(gens: dict, clips: list[FaceClip], data: dict) -> dict:
    """Scores of each trained generator and of the do-nothing baseline on the held-out blocks.

    ``gens``: name -> (generator, checkpoint); names starting with ``temporal`` run time-dependently.
    """
    import torch

    torch.set_num_threads(1)
    results = {name: evaluate(torch_generate(g), clips, data, ck["net"]["mode"] == "temporal") for name, (g, ck) in gens.items()}
    results["reference frame (no model)"] = evaluate(baseline_reference, clips, data, False)
    return results


def samples_image(gens: dict, clips: list[FaceClip], data: dict, per_clip: int = 4, max_clips: int = 4) -> np.ndarray:
    """Rows: drawing / truth / each model, for a few held-out frames of a few clips (BGR)."""
    import cv2

    blocks = []
    for clip, (start, end), ref in list(zip(clips, data["heldout"], data["references"]))[:max_clips]:
        idx = np.linspace(start, end - 1, per_clip).round().astype(int)
        rows = [np.hstack(list(clip.drawings[idx])), np.hstack(list(clip.crops[idx]))]
        for _, (g, ck) in gens.items():
            seq = generate_sequence(torch_generate(g), clip.drawings[start:end], clip.crops[ref], ck["net"]["mode"] == "temporal")
            rows.append(np.hstack(list(seq[idx - start])))
        blocks.append(np.vstack(rows))
    img = np.hstack(blocks)
    scale = max(1, 128 // clips[0].crop.size)
    img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    labels = ["drawing", "truth", *(label(n) for n in gens)]
    s = clips[0].crop.size * scale
    for i, name in enumerate(labels):
        cv2.putText(img, name, (4, i * s + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return img


LABELS = {"temporal": "time-dependent (shipped)", "pix2pix": "plain pix2pix",
          "temporal_nol1": "time-dependent, temporal D only (as published)"}


def label(name: str) -> str:
    return LABELS.get(name, name)


def write_card(path: Path, meta: dict, results: dict, clips: list[FaceClip], data: dict) -> None:
    temporal, plain = results.get("temporal"), results.get("pix2pix")
    verdict = ""
    if temporal and plain:
        ft, fp = temporal["pooled"]["flicker"], plain["pooled"]["flicker"]
        verdict = (f"Time-dependent vs plain pix2pix flicker: {ft:.2f} vs {fp:.2f}: "
                   + (f"{100 * (fp - ft) / fp:.0f}% less." if ft < fp else "NOT less."))
    held = sum(e - s for s, e in data["heldout"])
    per_clip = ["| clip | frames | " + " | ".join(f"{label(m)} PSNR / SSIM / flicker" for m in results) + " |",
                "| --- | --- | " + " | ".join("---" for _ in results) + " |"]
    for c in clips:
        cells = []
        for r in results.values():
            s = r["clips"].get(c.name)
            cells.append(f"{s['psnr']:.2f} / {s['ssim']:.3f} / {s['flicker']:.2f}" if s else "-")
        frames = next((r["clips"][c.name]["frames"] for r in results.values() if c.name in r["clips"]), 0)
        per_clip.append(f"| {c.name} | {frames} | " + " | ".join(cells) + " |")
    lip = meta.get("lipsync_finetune", {})
    lip_line = ("skipped (no lip-sync checkpoint to start from; pass --lipsync-base)" if "skipped" in lip else
                f"fine-tuned {lip.get('steps')} steps from `{Path(lip.get('base', '')).name}`: mouth-opening correlation on this"
                f" person's own speech {lip.get('opening_corr_before', 0):.3f} -> {lip.get('opening_corr_after', 0):.3f}"
                " (in-sample: the same footage it was tuned on)")
    if "kept_step" in lip and lip.get("val_clips"):
        lip_line += (f"; kept step {lip['kept_step']} of {lip.get('steps')}, the best on validation speech cut from the"
                     f" training part (r {lip.get('val_corr_before', 0):.3f} at step 0 -> {lip.get('val_corr_kept', 0):.3f})")
    warm = data.get("warm_start")
    warm_line = (f"\n- Progressive training: the time-dependent generator started from plain pix2pix at step {warm['step']}"
                 " (its previous-frame filters at zero) and trained the remaining steps." if warm else "")
    net, tr = meta["net"], meta["train"]
    at = meta.get("heldout_at", 0.4) + meta.get("heldout", 0.2)
    where = ": the tail, its audio unused by the lip-sync fine-tune too" if at >= 0.999 else ", while the person talks"
    losses = ", ".join(f"{k} {tr[k]:g}" for k in ("feature_matching", "mouth_l1", "edge_l1") if tr.get(k))
    loop = meta.get("loop") or {}
    loop_line = (f"\n- Base video: a {loop['seconds']} s loop of the person's own training frames ({loop['frames']} frames from"
                 f" frame {loop['start']} of {loop['video']}, {loop['fade']}-frame crossfade at the seam)." if loop else "")
    build_line = (f"\n- Build time over all runs: {meta['build_minutes']:.1f} min ({', '.join(f'{k} {v / 60:.1f}' for k, v in meta.get('timing_s', {}).items())} min)."
                  if meta.get("build_minutes") else "")
    main = results[next(iter(results))]["pooled"]
    motion = (f"\n- Motion ratio {main['motion_ratio']:.2f}: the generated mouth changes less from frame to frame than the"
              " real one (L1 pulls towards the average shape; the GAN terms only partly undo it)." if main["motion_ratio"] < 0.9 else "")
    text = f"""# Avatar `{meta['name']}` — neural mouth renderer

Built {meta['built']} on `{meta['device']}` by `assistant avatar build` from {len(meta['sources'])} video(s)
({meta['footage_s']:.1f} s of talking footage): {', '.join(meta['sources'])}.

## Model
- Generator: U-Net ({net['mode']}), {net['size']}x{net['size']} mouth crop, {net['ngf']} base channels,
  inputs: landmark drawing{', previous generated frame' if net['mode'] == 'temporal' else ''}{', reference frame' if net['use_reference'] else ''}.
- Discriminators: PatchGAN on (drawing, frame){' and on consecutive (drawings, frames) pairs' if net['mode'] == 'temporal' else ''}; LSGAN + {tr['l1_weight']:g} x L1.
- Trained {meta['steps']} steps, batch {tr['batch']}, Adam lr {tr['lr']:g}; frame-change L1 weight {tr.get('temporal_l1', 0):g}
  (0 = the temporal discriminator alone, as in Everybody Dance Now){'; ' + losses if losses else ''}. ONNX parity with torch: {meta['onnx_parity']:.1e}.{warm_line}{loop_line}{build_line}
- Audio -> landmarks: {lip_line}.

## Evaluation (held-out frames driven by their true landmarks)
{held} frames (one contiguous block of every video, never trained on; {meta.get('heldout', 0.2):.0%}
of each video starting at {meta.get('heldout_at', 0.4):.0%} of it{where}) are generated frame by frame
from their true landmark drawings, starting from the reference frame (the most closed mouth among
the training frames); scores are taken inside the blend mask, 8-bit units. Flicker = mean |(g_t - g_t-1) - (r_t - r_t-1)|: frame-to-frame change the real
mouth did not make (lower is better). Motion ratio = generated / real frame-to-frame change.

{table({label(k): v for k, v in results.items()})}

{verdict}

Per clip:

{chr(10).join(per_clip)}

![held-out samples: drawing, truth, then each model](samples.jpg)

## Limits
- The crop is {net['size']} px: on a 1080p screen the mouth region is upscaled{' (CPU build: 64-128 px; GPU builds use 256 px)' if net['size'] < 256 else ''}.
- Held-out frames come from the same videos as the training frames: this measures
  generalisation to new mouth shapes of the same person, not to new people or lighting.{motion}
"""
    path.write_text(text)
