"""Which drives the face closer to real lips for Piper's voice: its phoneme timings or the learned audio driver?

Run from the repository root: ``python bench/piper_lips.py``. Progress goes to stderr; the last
line of stdout is one JSON object. Needs ``../shared/data/talking/grid`` (real GRID speakers).

Method. Piper cannot say a GRID sentence with the speaker's own timing, so for each GRID clip:

1. Piper speaks the clip's sentence (default voice and noise settings, ``--takes`` times).
2. Each driver turns that one Piper utterance into a mouth track at 25 fps: ``viseme`` from
   Piper's phoneme timings (what the renderer uses for Piper), ``lstm`` (the learned
   audio -> landmarks model, what it uses for gTTS) and ``energy`` (a loudness baseline) from
   Piper's audio.
3. Piper's audio is aligned to the real speaker's audio by dynamic time warping on MFCCs with
   per-utterance mean and variance normalisation. The path comes from the audio alone, so it
   favours no driver, and every driver's mouth is warped by the same path onto the speaker's
   frames.
4. Score: Pearson r between the warped inner-lip opening and the opening dlib measured on the
   speaker's face, per clip, averaged; plus the lag of the best cross-correlation.

For reference the same drivers run on the real audio (viseme from pocketsphinx forced
alignment of the known transcript), the usual lip-sync evaluation. Clips the learned model was
trained on are reported apart from the three it never saw (``models/lipsync/config.GridSplit``).
Limits: ten short read command sentences by other speakers; the DTW path is only as good as
cross-speaker MFCC matching (its own quality is reported as the correlation of the warped
Piper energy envelope with the speaker's, ``dtw_energy_r``); dlib's opening is itself noisy (whole-pixel fits).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

from assistant.face.audio_features import FeatureConfig, hop_features, n_video_frames  # noqa: E402
from assistant.face.energy import EnergyDriver  # noqa: E402
from assistant.face.geometry import mouth_opening  # noqa: E402
from assistant.face.lstm_driver import LstmDriver  # noqa: E402
from assistant.face.visemes import VisemeDriver  # noqa: E402

FPS = 25.0
SUB = FeatureConfig().sub_frames


def log(msg: str, *args) -> None:
    print(msg % args, file=sys.stderr, flush=True)


def hop_mfcc(audio: np.ndarray, rate: int) -> np.ndarray:
    """Log energy + MFCC c1-c12 per 10 ms hop (4 per video frame), normalised per utterance."""
    f = hop_features(audio, rate, FeatureConfig())[:, :13]
    return (f - f.mean(0)) / (f.std(0) + 1e-6)


def dtw_path(a: np.ndarray, b: np.ndarray) -> list[tuple[int, int]]:
    """Alignment path between feature sequences ``a`` (speaker) and ``b`` (Piper)."""
    n, m = len(a), len(b)
    cost = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j, path = n, m, []
    while i > 0 and j > 0:
        path.append((i - 1, j - 1))
        step = np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]])
        i, j = (i - 1, j - 1) if step == 0 else (i - 1, j) if step == 1 else (i, j - 1)
    return path[::-1]


def warp(values: np.ndarray, path: list[tuple[int, int]], n: int) -> np.ndarray:
    """Piper-frame ``values`` onto the speaker's ``n`` frames (mean of the Piper frames matched;
    the path is in hops, ``SUB`` per frame)."""
    out, count = np.zeros(n), np.zeros(n)
    for i, j in path:
        if i // SUB < n and j // SUB < len(values):
            out[i // SUB] += values[j // SUB]
            count[i // SUB] += 1
    return out / np.maximum(count, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "talking" / "grid")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "piper-lips-grid")
    ap.add_argument("--takes", type=int, default=3, help="Piper syntheses per sentence (its timing varies)")
    ap.add_argument("--smoke", action="store_true", help="one held-out clip, one take (the test suite)")
    args = ap.parse_args()
    if args.smoke:
        args.takes = 1
    if not args.videos.is_dir():
        print(json.dumps({"skipped" if args.smoke else "error": f"no GRID clips at {args.videos}"}))
        return
    import soxr

    from models.lipsync.config import GRID_TRANSCRIPTS, GridSplit
    from models.lipsync.evaluate import MAX_LAG, load_real, pearson, viseme_phonemes, xcorr
    from services.voice.tts.piper_engine import PiperEngine

    t_start = time.monotonic()
    names = sorted(GridSplit().heldout)[:1] if args.smoke else sorted(GRID_TRANSCRIPTS)
    log("measuring the speakers' lips with dlib (cached in %s)", args.cache)
    clips = load_real(names, args.cache, args.videos)
    piper = PiperEngine()
    piper.load()
    drivers = {"viseme": VisemeDriver(), "lstm": LstmDriver(threads=1), "energy": EnergyDriver()}
    heldout = set(GridSplit().heldout)
    rows: dict[str, dict[str, list[float]]] = {k: {"r": [], "lag": [], "r_real_audio": []} for k in drivers}
    rows_heldout: dict[str, list[float]] = {k: [] for k in drivers}
    dtw_quality = []
    for clip in clips:
        real_open = mouth_opening(clip.mouth)
        n = min(len(real_open), n_video_frames(len(clip.audio), 16000, FPS))
        real_open = real_open[:n]
        real_feat = hop_mfcc(clip.audio, 16000)
        real_env = real_feat[: n * SUB, 0].reshape(n, SUB).mean(1)
        for name, driver in drivers.items():  # reference: the same drivers on the speaker's own audio
            ph = viseme_phonemes(clip) if name == "viseme" else None
            m = driver.drive(clip.audio, 16000, FPS, ph, "arpabet" if ph else "")
            rows[name]["r_real_audio"].append(pearson(mouth_opening(m)[:n], real_open))
        for take in range(args.takes):
            s = piper.synthesize(GRID_TRANSCRIPTS[clip.name] + ".")
            audio = soxr.resample(s.pcm.astype(np.float32) / 32768, s.sample_rate, 16000)
            feat = hop_mfcc(audio, 16000)
            path = dtw_path(real_feat, feat)
            m = len(feat) // SUB
            dtw_quality.append(pearson(warp(feat[: m * SUB, 0].reshape(m, SUB).mean(1), path, n), real_env))
            for name, driver in drivers.items():
                mouth = driver.drive(s.pcm, s.sample_rate, FPS, s.phonemes or None, s.alphabet)
                opening = warp(mouth_opening(mouth), path, n)
                r = pearson(opening, real_open)
                rows[name]["r"].append(r)
                rows[name]["lag"].append(int(np.argmax(xcorr(opening, real_open))) - MAX_LAG)
                if clip.name in heldout:
                    rows_heldout[name].append(r)
        log("%s %r: %s", clip.name, GRID_TRANSCRIPTS[clip.name],
            ", ".join(f"{k} r={np.mean(v['r'][-args.takes:]):.2f}" for k, v in rows.items()))
    result = {}
    for name, v in rows.items():
        result[f"{name}_on_piper_r"] = round(float(np.mean(v["r"])), 3)
        result[f"{name}_on_piper_r_heldout"] = round(float(np.mean(rows_heldout[name])), 3)
        result[f"{name}_on_piper_lag_frames_median"] = int(np.median(v["lag"]))
        result[f"{name}_on_real_audio_r"] = round(float(np.mean(v["r_real_audio"])), 3)
    result["closer_to_real_lips"] = max(drivers, key=lambda k: result[f"{k}_on_piper_r"])
    # Is the gap between the learned driver and Piper's timings more than clip-to-clip noise?
    per_clip = {k: np.array(v["r"]).reshape(len(clips), args.takes).mean(1) for k, v in rows.items()}
    diff = per_clip["lstm"] - per_clip["viseme"]
    boot = np.random.default_rng(0).choice(diff, (10000, len(diff))).mean(1)
    result["lstm_minus_viseme_r"] = round(float(diff.mean()), 3)
    result["lstm_minus_viseme_r_ci95"] = [round(float(np.percentile(boot, 2.5)), 3),
                                          round(float(np.percentile(boot, 97.5)), 3)]
    result["lstm_better_clips"] = int((diff > 0).sum())
    result["dtw_energy_r"] = round(float(np.mean(dtw_quality)), 3)
    result["clips"] = len(clips)
    result["takes"] = args.takes
    result["seconds"] = round(time.monotonic() - t_start, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
