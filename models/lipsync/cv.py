"""Leave-speakers-out cross-validation over every real speaker we have, and the shipped model.

``python -m models.lipsync.cv`` runs, with everything derived cached under ``build/lipsync``:

1. measure the 17 real talking videos (dlib landmarks, ``dataset.clip_from_video``; cached);
2. pretrain on synthetic voices only (no real speaker, so no fold has seen its held-out people);
3. per fold: fine-tune on the real speakers of the other folds (plus synthetic voices),
   calibrate the output gain on them, export ``weights/cv/fold{k}.onnx`` (its held-out speakers
   are in the ONNX metadata: ``bench/lipsync.py`` scores each speaker with the one model that
   never heard or saw them);
4. the shipped model: the same recipe on every real speaker except the three GRID clips of
   ``GridSplit.heldout`` (kept out for the GRID floors), exported to ``weights/lipsync.onnx``.

Stages can be run alone (``--stage pretrain|folds|final|ensemble|report``; ``--folds 0 2`` for
some folds). The shipped files average two seeds per fold: run folds and final again with
``--seed-offset 10 --tag _s2`` (other ``--weights``), then ``--stage ensemble --members "" _s2``
(see the model card for the exact commands).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from .config import GridSplit, NetConfig, TrainConfig
from .dataset import SAMPLE_RATE, Clip

log = logging.getLogger(__name__)

REAL_VIDEOS: dict[str, str] = {
    **{name: f"grid/{name}.mpg" for name in ("bbaf2n", "brbk7n", "lbax4n", "lbbc2a", "lrwp9a",
                                             "lwbsza", "pwij3p", "sbia1a", "sbwe5n", "swiz3n")},
    **{f"retalking{k}": f"wild/retalking{k}.mp4" for k in range(1, 6)},
    "lieu": "single/lieu.mp4",
    "obama": "single/obama.mp4",
}
"""One clip per real speaker (17 speakers), paths under ``shared/data/talking``."""

FOLDS: tuple[tuple[str, ...], ...] = (
    ("bbaf2n", "brbk7n", "retalking1", "lieu"),
    ("lbax4n", "lbbc2a", "retalking2", "obama"),
    ("lrwp9a", "lwbsza", "retalking3"),
    ("pwij3p", "sbia1a", "retalking4"),
    ("sbwe5n", "swiz3n", "retalking5"),
)
"""Whole speakers per fold: two GRID speakers and one in-the-wild speaker each; the two long
single-speaker recordings in different folds, so every fold trains on continuous speech."""

AMP_REF = 0.25
"""Speaker-normalised targets: every clip's 95th-percentile opening is scaled to this (IOD)
during training; the output gain then maps it back to what real training speakers measure."""


def fold_of(name: str) -> int:
    for k, fold in enumerate(FOLDS):
        if name in fold:
            return k
    raise KeyError(f"{name} is in no fold")


def load_real_clips(data: Path, cache: Path, names=None) -> dict[str, Clip]:
    """Every real clip by name, measured from its video once and cached as ``.npz``."""
    from .evaluate import load_clip

    return {n: load_clip(n, data / REAL_VIDEOS[n], cache) for n in (names or REAL_VIDEOS)}


def recipe(stage: str, seed: int = 0, threads: int = 1) -> TrainConfig:
    """Training settings of each stage (one place, so folds and the shipped model share them)."""
    base = TrainConfig(net=NetConfig(kind="tcn", hidden=64, dropout=0.2), amp_ref=AMP_REF, seed=seed, threads=threads, batch=16)
    if stage == "pretrain":
        return replace(base, epochs=30, lr=3e-3, real_fraction=0.0)
    return replace(base, epochs=18, lr=1.5e-3, real_fraction=0.7)


def _fit(stage_cfg: TrainConfig, train_clips: list[Clip], val_clips: list[Clip], synth: list[Clip], out: Path,
         init: Path | None, steps: int, bank: dict) -> Path:
    from .train import train

    train(stage_cfg, train_clips, synth, out, val_clips, steps, init=init, bank=bank)
    return out


def shift_clip(clip: Clip, lag: int) -> Clip:
    """The clip with its audio moved ``lag`` frames earlier (``lag`` > 0: the audio was late)."""
    if lag == 0:
        return clip
    spf = int(round(SAMPLE_RATE / clip.fps))
    if lag > 0:
        audio, mouth = clip.audio[lag * spf :], clip.mouth[: len(clip.mouth) - lag]
    else:
        audio, mouth = np.concatenate([np.zeros(-lag * spf, np.float32), clip.audio]), clip.mouth[: len(clip.mouth)]
        audio = audio[: len(clip.audio)]
    return replace(clip, name=f"{clip.name}@{lag:+d}", audio=audio, mouth=mouth)


def sync_check(model_path: Path, clips: dict[str, Clip], max_lag: int = 8) -> dict[str, dict]:
    """A/V sync of each clip as the synthetic-only network hears it: r at lag 0 and at its best lag.

    Like SyncNet filtering of talking-face corpora: the network has seen no real speaker, so it
    judges each recording's audio against its video without having learnt from either.
    """
    from assistant.face.geometry import mouth_opening

    from .evaluate import xcorr
    from .network import load_checkpoint
    from .train import predict_clip

    model, ckpt = load_checkpoint(model_path)
    cfg = TrainConfig()
    out = {}
    for name, c in clips.items():
        curve = xcorr(mouth_opening(predict_clip(model, c, cfg)), mouth_opening(c.mouth), max_lag)
        out[name] = {"r0": float(curve[max_lag]), "best": float(curve.max()), "lag": int(np.argmax(curve) - max_lag)}
    return out


def clean_for_training(clips: dict[str, Clip], sync: dict[str, dict], min_gain: float = 0.3,
                       min_r: float = 0.2) -> dict[str, Clip]:
    """Training copies of the clips: a clear A/V offset (best-lag r above lag-0 r by ``min_gain``)
    is undone, a clip whose mouth follows its audio at no lag (best r < ``min_r``) is left out.
    Evaluation always uses the clips as recorded."""
    out = {}
    for name, c in clips.items():
        s = sync[name]
        if s["best"] < min_r:
            log.warning("%s left out of training: its mouth does not follow its audio (best r %.2f)", name, s["best"])
            continue
        lag = s["lag"] if s["best"] - s["r0"] >= min_gain else 0
        if lag:
            log.warning("%s: audio %d frames late (r %.2f at lag 0, %.2f at %+d); shifted for training", name, lag, s["r0"], s["best"], lag)
        out[name] = shift_clip(c, lag)
    return out


def export_ensemble(ckpts: list[Path], onnx_path: Path, heldout: list[str], calib: list[Clip]) -> tuple[float, float]:
    """Average the checkpoints' networks, calibrate the ensemble's gain on ``calib`` (its real
    training clips) and export it; returns (gain, ONNX parity)."""
    from .export import export
    from .network import Ensemble, load_checkpoint
    from .train import calibrate_gain

    loaded = [load_checkpoint(p) for p in ckpts]
    ens = Ensemble([m for m, _ in loaded]).eval()
    gain = calibrate_gain(ens, calib, TrainConfig())
    ckpt = dict(loaded[0][1])
    ckpt["data"] = {**ckpt.get("data", {}), "heldout": list(heldout), "members": [str(p.name) for p in ckpts], "ensemble_gain": gain}
    return gain, export(ens, ckpt, onnx_path)


def export_fold(ckpt_path: Path, onnx_path: Path, heldout: list[str]) -> float:
    from .export import export
    from .network import load_checkpoint

    model, ckpt = load_checkpoint(ckpt_path)
    ckpt.setdefault("data", {})["heldout"] = list(heldout)
    return export(model, ckpt, onnx_path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/talking"))
    ap.add_argument("--cache", type=Path, default=Path("build/lipsync/real"))
    ap.add_argument("--synth", type=Path, default=Path("build/lipsync/synth"))
    ap.add_argument("--work", type=Path, default=Path("build/lipsync/cv"))
    ap.add_argument("--weights", type=Path, default=Path("models/lipsync/weights"))
    ap.add_argument("--stage", choices=["all", "pretrain", "folds", "final", "ensemble", "report"], default="all")
    ap.add_argument("--members", nargs="*", default=[], help="ensemble stage: checkpoint tags to average (\"\" is the plain one)")
    ap.add_argument("--plot-speakers", nargs="*", default=["lieu", "retalking2"], help="validation speakers to plot")
    ap.add_argument("--folds", type=int, nargs="*", default=None)
    ap.add_argument("--steps", type=int, default=32, help="batches per epoch")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared box more only spin)")
    ap.add_argument("--max-synth", type=int, default=100000)
    ap.add_argument("--real-versions", type=int, default=24, help="augmented versions of each real clip")
    ap.add_argument("--seed-offset", type=int, default=0, help="added to every fine-tune seed (another ensemble member)")
    ap.add_argument("--tag", default="", help="suffix of the checkpoint names (fold{k}{tag}.pt, final{tag}.pt)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .dataset import load_dir

    from .train import build_bank

    synth = load_dir(args.synth)[: args.max_synth] if args.synth.is_dir() else []
    bank = build_bank(synth, recipe("finetune"), 2, cache=args.work.parent / "bank", progress=False)
    clips, train_clips_all = {}, {}
    pre = args.work / "pretrain.pt"
    if args.stage != "pretrain":
        clips = load_real_clips(args.data, args.cache)
    if args.stage in ("all", "pretrain"):
        _fit(recipe("pretrain", threads=args.threads), [], [], synth, pre, None, args.steps, bank)
    if args.stage in ("all", "folds", "final", "ensemble"):
        import json

        sync = sync_check(pre, clips)
        (args.work / "sync.json").write_text(json.dumps(sync, indent=1))
        train_clips_all = clean_for_training(clips, sync)
        bank |= build_bank(list(train_clips_all.values()), recipe("finetune"), args.real_versions, cache=args.work.parent / "bank", progress=False)
    log.info("%d real clips (%.0f s), %d synthetic", len(clips), sum(len(c.mouth) / c.fps for c in clips.values()), len(synth))
    if args.stage in ("all", "folds"):
        for k in args.folds if args.folds is not None else range(len(FOLDS)):
            held = list(FOLDS[k])
            train_clips = [c for n, c in train_clips_all.items() if n not in held]
            ckpt = _fit(recipe("finetune", seed=k + args.seed_offset, threads=args.threads), train_clips,
                        [clips[n] for n in held], synth, args.work / f"fold{k}{args.tag}.pt", pre, args.steps, bank)
            worst = export_fold(ckpt, args.weights / "cv" / f"fold{k}.onnx", held)
            log.info("fold %d exported (parity %.1e), held out %s", k, worst, held)
    if args.stage in ("all", "final"):
        held = list(GridSplit().heldout)
        train_clips = [c for n, c in train_clips_all.items() if n not in held]
        ckpt = _fit(recipe("finetune", seed=100 + args.seed_offset, threads=args.threads), train_clips,
                    [clips[n] for n in held], synth, args.work / f"final{args.tag}.pt", pre, args.steps, bank)
        worst = export_fold(ckpt, args.weights / "lipsync.onnx", held)
        log.info("shipped model exported (parity %.1e)", worst)
    if args.stage == "ensemble":
        for k, fold in enumerate(FOLDS):
            calib = [c for n, c in train_clips_all.items() if n not in fold]
            g, worst = export_ensemble([args.work / f"fold{k}{t}.pt" for t in args.members], args.weights / "cv" / f"fold{k}.onnx",
                                       list(fold), calib)
            log.info("fold %d ensemble: gain %.2f, parity %.1e", k, g, worst)
        held = list(GridSplit().heldout)
        g, worst = export_ensemble([args.work / f"final{t}.pt" for t in args.members], args.weights / "lipsync.onnx", held,
                                   [c for n, c in train_clips_all.items() if n not in held])
        log.info("shipped ensemble: gain %.2f, parity %.1e", g, worst)
    if args.stage in ("all", "report"):
        report(clips, args.weights, args.work, args.plot_speakers)
    return 0


def report(clips: dict[str, Clip], weights: Path, work: Path, plot_speakers: list[str]) -> dict:
    """Cross-validated table (printed, and JSON in ``work``) and the plot for the model card."""
    import json

    from .evaluate import cross_validate, cv_table, per_clip_table, plot_cv

    folds = sorted((weights / "cv").glob("fold*.onnx"))
    result = cross_validate(folds, clips)
    print(cv_table(result))
    print(per_clip_table(result))
    (work / "cv.json").write_text(json.dumps(result, indent=1))
    plot_cv(folds, clips, plot_speakers, weights / "cv_opening.png")
    return result


if __name__ == "__main__":
    sys.exit(main())
