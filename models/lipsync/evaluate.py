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


def load_real(names, cache: Path, video_dir: Path) -> list[Clip]:
    """Clips from the dataset cache, measured from the videos when not cached yet."""
    clips = []
    for name in names:
        path = cache / f"{name}.npz"
        if path.is_file():
            clips.append(Clip.load(path))
        else:
            clip = clip_from_video(video_dir / f"{name}.mpg", progress=False)
            cache.mkdir(parents=True, exist_ok=True)
            clip.save(path)
            clips.append(clip)
    return clips


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
