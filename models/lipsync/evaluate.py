"""Evaluate mouth drivers on real talking clips: ``python -m models.lipsync.evaluate``.

For each held-out GRID clip: Pearson correlation of predicted vs measured inner-lip opening,
mean landmark error (canonical units, i.e. fractions of the inter-ocular distance) and the
A/V lag (peak of the cross-correlation, frames; positive = the driver's mouth moves late).
Drivers: the trained network (ONNX, as shipped), the audio-energy baseline and the
phoneme/viseme driver fed by pocketsphinx forced alignment of the known transcript.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from assistant.face.energy import EnergyDriver
from assistant.face.geometry import mouth_opening
from assistant.face.lstm_driver import DEFAULT_MODEL, LstmDriver
from assistant.face.visemes import VisemeDriver

from .config import GRID_TRANSCRIPTS, GridSplit
from .dataset import SAMPLE_RATE, Clip, clip_from_video

log = logging.getLogger(__name__)
MAX_LAG = 5


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def xcorr(pred: np.ndarray, true: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """Correlation for lags -max_lag..max_lag; lag k pairs pred[t + k] with true[t]."""
    out = []
    for k in range(-max_lag, max_lag + 1):
        p = pred[k:] if k >= 0 else pred[:k]
        t = true[: len(true) - k] if k >= 0 else true[-k:]
        out.append(pearson(p, t))
    return np.array(out)


def load_clip(name: str, video: Path, cache: Path) -> Clip:
    """One clip from the dataset cache, measured from its video (and cached) when not there yet."""
    path = cache / f"{name}.npz"
    if path.is_file():
        return Clip.load(path)
    clip = clip_from_video(video, progress=False)
    cache.mkdir(parents=True, exist_ok=True)
    clip.save(path)
    return clip


def load_real(names, cache: Path, video_dir: Path) -> list[Clip]:
    """GRID clips from the dataset cache, measured from the videos when not cached yet."""
    return [load_clip(name, video_dir / f"{name}.mpg", cache) for name in names]


def viseme_phonemes(clip: Clip):
    from .align import align_phonemes

    return align_phonemes(clip.audio, GRID_TRANSCRIPTS[clip.name])


def evaluate(clips: list[Clip], drivers: dict) -> dict:
    """{driver: {"corr", "landmark_err", "lag_frames", "per_clip": {...}}}."""
    result = {}
    for name, driver in drivers.items():
        per_clip, curves = {}, []
        for clip in clips:
            phonemes = viseme_phonemes(clip) if name == "viseme" else None
            mouth = driver.drive(clip.audio, SAMPLE_RATE, clip.fps, phonemes, "arpabet" if phonemes else "")
            n = min(len(mouth), len(clip.mouth))
            pred, true = mouth_opening(mouth[:n]), mouth_opening(clip.mouth[:n])
            err = float(np.linalg.norm(mouth[:n] - clip.mouth[:n], axis=-1).mean())
            curve = xcorr(pred, true)
            curves.append(curve)
            per_clip[clip.name] = {"corr": pearson(pred, true), "landmark_err": err,
                                   "lag_frames": int(np.argmax(curve) - MAX_LAG)}
        pooled = np.mean(curves, axis=0)
        result[name] = {
            "corr": float(np.mean([v["corr"] for v in per_clip.values()])),
            "landmark_err": float(np.mean([v["landmark_err"] for v in per_clip.values()])),
            "lag_frames": int(np.argmax(pooled) - MAX_LAG),
            "per_clip": per_clip,
        }
    return result


def fold_heldout(model: Path) -> list[str]:
    """Names of the real speakers a cross-validation fold model never trained on (ONNX metadata)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    meta = json.loads(sess.get_modelmeta().custom_metadata_map.get("lipsync", "{}"))
    held = meta.get("data", {}).get("heldout")
    if not held:
        raise ValueError(f"{model}: no held-out speakers in its metadata; not a cross-validation fold")
    return list(held)


def score_clip(mouth: np.ndarray, clip: Clip) -> dict:
    """r at lag 0, best r and its lag (|lag| <= MAX_LAG), landmark error, both openings."""
    n = min(len(mouth), len(clip.mouth))
    pred, true = mouth_opening(mouth[:n]), mouth_opening(clip.mouth[:n])
    curve = xcorr(pred, true)
    return {"corr": pearson(pred, true), "best_corr": float(curve.max()), "best_lag": int(np.argmax(curve) - MAX_LAG),
            "landmark_err": float(np.linalg.norm(mouth[:n] - clip.mouth[:n], axis=-1).mean()),
            "curve": curve, "pred": pred, "true": true}


def cross_validate(fold_models: list[Path], clips: dict[str, Clip], threads: int = 1) -> dict:
    """Every clip scored by the fold model that never saw its speaker, and by the baselines.

    Returns ``{driver: {"corr", "best_corr", "lag_frames", "landmark_err", "amplitude_ratio",
    "per_clip": {name: {...}}}}`` for ``lstm`` (the fold models), ``energy`` and ``viseme`` (only
    clips with a known transcript: GRID). ``amplitude_ratio`` = p95 of the predicted opening /
    p95 of the measured one, pooled over the clips.
    """
    preds: dict[str, dict[str, np.ndarray]] = {"lstm": {}, "energy": {}, "viseme": {}}
    for model in fold_models:
        driver = LstmDriver(model, threads=threads, prefer_gpu=False)
        for name in fold_heldout(model):
            if name in clips:
                c = clips[name]
                preds["lstm"][name] = driver.drive(c.audio, SAMPLE_RATE, c.fps)
    energy, viseme = EnergyDriver(), VisemeDriver()
    for name, c in clips.items():
        preds["energy"][name] = energy.drive(c.audio, SAMPLE_RATE, c.fps)
        if name in GRID_TRANSCRIPTS:
            ph = viseme_phonemes(c)
            preds["viseme"][name] = viseme.drive(c.audio, SAMPLE_RATE, c.fps, ph, "arpabet")
    result = {}
    for driver, by_clip in preds.items():
        if not by_clip:
            continue
        scores = {n: score_clip(m, clips[n]) for n, m in by_clip.items()}
        pooled = np.mean([s["curve"] for s in scores.values()], axis=0)
        p95 = lambda key: float(np.percentile(np.concatenate([s[key] for s in scores.values()]), 95))  # noqa: E731
        result[driver] = {
            "corr": float(np.mean([s["corr"] for s in scores.values()])),
            "best_corr": float(np.mean([s["best_corr"] for s in scores.values()])),
            "lag_frames": int(np.argmax(pooled) - MAX_LAG),
            "landmark_err": float(np.mean([s["landmark_err"] for s in scores.values()])),
            "amplitude_ratio": p95("pred") / max(p95("true"), 1e-9),
            "clips": len(scores),
            "per_clip": {n: {k: v for k, v in s.items() if k not in ("curve", "pred", "true")} | {
                "p95_pred": float(np.percentile(s["pred"], 95)), "p95_true": float(np.percentile(s["true"], 95)),
                "seconds": len(s["true"]) / clips[n].fps} for n, s in scores.items()},
        }
    return result


def cv_table(result: dict) -> str:
    rows = ["| driver | clips | r at lag 0 (mean) | r at best lag (mean) | pooled lag (frames) | landmark error (IOD) | amplitude ratio (p95) |",
            "|---|---|---|---|---|---|---|"]
    for name, r in result.items():
        rows.append(f"| {name} | {r['clips']} | {r['corr']:.3f} | {r['best_corr']:.3f} | {r['lag_frames']:+d} | "
                    f"{r['landmark_err']:.4f} | {r['amplitude_ratio']:.2f} |")
    return "\n".join(rows)


def per_clip_table(result: dict) -> str:
    names = list(result["lstm"]["per_clip"])
    rows = ["| clip | s | lstm r | lstm best r (lag) | energy r | viseme r | p95 opening pred / real |", "|---|---|---|---|---|---|---|"]
    for n in names:
        lv = result["lstm"]["per_clip"][n]
        e = result["energy"]["per_clip"].get(n, {})
        v = result.get("viseme", {}).get("per_clip", {}).get(n)
        vr = f"{v['corr']:.2f}" if v else "-"
        rows.append(f"| {n} | {lv['seconds']:.1f} | {lv['corr']:.2f} | {lv['best_corr']:.2f} ({lv['best_lag']:+d}) | "
                    f"{e.get('corr', float('nan')):.2f} | {vr} | {lv['p95_pred']:.3f} / {lv['p95_true']:.3f} |")
    return "\n".join(rows)


def plot_cv(fold_models: list[Path], clips: dict[str, Clip], names: list[str], out: Path, seconds: float = 12.0) -> None:
    """Predicted (by the fold model that never saw the speaker) vs measured opening, per speaker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    owner = {n: m for m in fold_models for n in fold_heldout(m)}
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.6 * len(names)), squeeze=False)
    energy = EnergyDriver()
    for ax, name in zip(axes[:, 0], names):
        c = clips[name]
        pred = mouth_opening(LstmDriver(owner[name], threads=1, prefer_gpu=False).drive(c.audio, SAMPLE_RATE, c.fps))
        en = mouth_opening(energy.drive(c.audio, SAMPLE_RATE, c.fps))
        true = mouth_opening(c.mouth)
        n = min(len(pred), len(true), int(seconds * c.fps))
        t = np.arange(n) / c.fps
        ax.plot(t, true[:n], "k", lw=2, label="measured (dlib)")
        ax.plot(t, pred[:n], label=f"this model, fold {owner[name].stem} (r {pearson(pred[:n], true[:n]):.2f})")
        ax.plot(t, en[:n], lw=0.8, alpha=0.7, label=f"energy baseline (r {pearson(en[:n], true[:n]):.2f})")
        ax.set_title(f"{name}: speaker never trained on (first {n / c.fps:.0f} s)")
        ax.set_ylabel("inner-lip opening (IOD)")
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def table(result: dict) -> str:
    rows = ["| driver | opening r (mean) | landmark error (IOD) | A/V lag (frames) | per clip r |", "|---|---|---|---|---|"]
    for name, r in result.items():
        per = ", ".join(f"{k} {v['corr']:.2f}" for k, v in r["per_clip"].items())
        rows.append(f"| {name} | {r['corr']:.3f} | {r['landmark_err']:.4f} | {r['lag_frames']:+d} | {per} |")
    return "\n".join(rows)


def plot(clips: list[Clip], drivers: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(clips), 1, figsize=(8, 2.4 * len(clips)), squeeze=False)
    for ax, clip in zip(axes[:, 0], clips):
        t = np.arange(len(clip.mouth)) / clip.fps
        ax.plot(t, mouth_opening(clip.mouth), "k", lw=2, label="measured (dlib)")
        for name, d in drivers.items():
            ph = viseme_phonemes(clip) if name == "viseme" else None
            ax.plot(t, mouth_opening(d.drive(clip.audio, SAMPLE_RATE, clip.fps, ph, "arpabet"))[: len(t)], label=name)
        ax.set_title(f"{clip.name}: \"{GRID_TRANSCRIPTS.get(clip.name, '')}\" (held out)")
        ax.set_ylabel("opening")
    axes[0, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--cache", type=Path, default=Path("build/lipsync/real"))
    ap.add_argument("--videos", type=Path, default=Path("../shared/data/talking/grid"))
    ap.add_argument("--clips", nargs="*", default=list(GridSplit().heldout))
    ap.add_argument("--plot", type=Path, default=None, help="PNG of opening curves per clip")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    clips = load_real(args.clips, args.cache, args.videos)
    drivers = {"lstm": LstmDriver(args.model), "energy": EnergyDriver(), "viseme": VisemeDriver()}
    result = evaluate(clips, drivers)
    print(table(result))
    if args.plot:
        plot(clips, drivers, args.plot)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
