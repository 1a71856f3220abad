"""Lip-sync benchmark on held-out real GRID clips (never used in training) and CPU speed.

``PYTHONPATH=. python bench/lipsync.py [--model PATH] [--smoke]``; the last stdout line is one JSON object:
heldout_mouth_corr (trained network, mean Pearson r of inner-lip opening), energy_baseline_corr,
viseme_baseline_corr (pocketsphinx-aligned phonemes -> VisemeDriver), lag_frames (network's A/V
lag at the pooled cross-correlation peak), realtime_factor_cpu1 (seconds of audio per second of
compute, features + network, one thread pinned to one core, median of 5 runs on 60 s of speech).

Leave-speakers-out cross-validation over all 17 real speakers (GRID, wild, single; each scored by
the fold model in ``models/lipsync/weights/cv`` that never trained on that speaker):
real_cv_mouth_corr (mean per-clip r at lag 0), real_cv_best_corr (mean per-clip r at its best
lag within +-5 frames), real_cv_energy_corr (energy baseline, same clips), real_cv_viseme_corr
(viseme baseline, GRID clips only: the others have no transcript), real_cv_lag_frames (pooled
cross-correlation peak), real_cv_landmark_err, amplitude_ratio (p95 predicted / p95 measured
opening, pooled over the clips). The first run measures the videos with dlib (minutes) and
caches them under ``build/lipsync/real``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core means one core, before numpy loads its BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(REPO)

from assistant.face.energy import EnergyDriver  # noqa: E402
from assistant.face.lstm_driver import DEFAULT_MODEL, LstmDriver  # noqa: E402
from assistant.face.visemes import VisemeDriver  # noqa: E402
from models.lipsync.config import GridSplit  # noqa: E402
from models.lipsync.cv import load_real_clips  # noqa: E402
from models.lipsync.evaluate import cross_validate, cv_table, evaluate, load_real, per_clip_table, table  # noqa: E402


def realtime_factor(driver: LstmDriver, audio: np.ndarray, rate: int, runs: int = 5) -> float:
    driver.drive(audio[: rate * 2], rate, 25.0)  # warm-up: onnxruntime allocations, FFT plans
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        driver.drive(audio, rate, 25.0)
        times.append(time.perf_counter() - t0)
    return len(audio) / rate / float(np.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--cache", type=Path, default=REPO / "build" / "lipsync" / "real")
    ap.add_argument("--cv-models", type=Path, default=DEFAULT_MODEL.parent / "cv", help="fold*.onnx of the cross-validation")
    ap.add_argument("--json", type=Path, default=None, help="also write the full cross-validation result here")
    ap.add_argument("--smoke", action="store_true", help="one held-out clip, one cross-validation clip, 5 s of speech (the test suite)")
    args = ap.parse_args()
    if args.smoke and not (args.data / "talking" / "grid").is_dir():
        print(json.dumps({"skipped": f"needs the GRID clips in {args.data / 'talking' / 'grid'}"}))
        return 0
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    clips = load_real(GridSplit().heldout[:1] if args.smoke else GridSplit().heldout, args.cache, args.data / "talking" / "grid")
    lstm = LstmDriver(args.model, threads=1, prefer_gpu=False)
    result = evaluate(clips, {"lstm": lstm, "energy": EnergyDriver(), "viseme": VisemeDriver()})
    print(table(result))
    import soundfile as sf

    audio, rate = sf.read(str(args.data / "talking" / "musetalk" / "eng.wav"), dtype="float32")
    folds = sorted(args.cv_models.glob("fold*.onnx"))
    if not folds:
        print(f"no cross-validation models in {args.cv_models}", file=sys.stderr)
        return 2
    cv = cross_validate(folds, load_real_clips(args.data / "talking", args.cache, ["bbaf2n"] if args.smoke else None), threads=1)
    print(cv_table(cv))
    print(per_clip_table(cv))
    if args.json:
        args.json.write_text(json.dumps(cv, indent=1))
    out = {
        "heldout_mouth_corr": round(result["lstm"]["corr"], 4),
        "energy_baseline_corr": round(result["energy"]["corr"], 4),
        "viseme_baseline_corr": round(result["viseme"]["corr"], 4),
        "lag_frames": result["lstm"]["lag_frames"],
        "realtime_factor_cpu1": round(realtime_factor(lstm, audio[: rate * 5], rate, runs=1) if args.smoke else realtime_factor(lstm, audio, rate), 1),
        "real_cv_mouth_corr": round(cv["lstm"]["corr"], 4),
        "real_cv_best_corr": round(cv["lstm"]["best_corr"], 4),
        "real_cv_energy_corr": round(cv["energy"]["corr"], 4),
        "real_cv_viseme_corr": round(cv["viseme"]["corr"], 4),
        "real_cv_lag_frames": cv["lstm"]["lag_frames"],
        "real_cv_landmark_err": round(cv["lstm"]["landmark_err"], 4),
        "amplitude_ratio": round(cv["lstm"]["amplitude_ratio"], 3),
        "real_cv_clips": cv["lstm"]["clips"],
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
