"""``assistant avatar build VIDEO... --name NAME``: a talking video -> a kiosk avatar folder.

Stages (each resumable; running the same command again continues where it stopped):

1. check   refuse unusable input at once: missing file, no audio track, too short in total;
2. extract faces, landmarks, aligned mouth crops and drawings per video (refuses no face, a face
           lost too often, heavy head motion), cached per video in ``work/data``;
3. loop    the base video: a seamless loop of the person's own frames (training part only) that
           the generated mouth is inserted into (``models.neural.baseloop``);
4. train   the time-dependent generator (and plain pix2pix for the model card's comparison),
           checkpointed every few hundred steps in ``work/``;
5. lipsync fine-tune the audio -> landmarks model on this person's speech (when a base lip-sync
           checkpoint is available);
6. export  ONNX with a parity check (and float16 for the GPU);
7. card    held-out evaluation, plots, samples, ``avatar.json`` and ``MODEL_CARD.md``.

On the CPU the number of training steps follows a time budget (``--minutes``, default 60 for
the whole build): a few steps are timed before training and the rest of the budget is shared out;
the plan is saved, so a resumed build keeps it. Time spent per stage, over every run, is summed
in ``work/timing.json`` and reported as ``build_minutes`` in ``avatar.json``.

Progress goes to stderr with an ETA per stage. The renderer loads the folder by name
(``renderer.neural.avatar``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.paths import package_file

from .config import CropConfig, NetConfig, TrainConfig
from .dataset import FaceClip, Limits, extract, rest_frame

log = logging.getLogger(__name__)
LIPSYNC_WEIGHTS = package_file("models.lipsync", "weights")
DEFAULT_LIPSYNC_BASE = LIPSYNC_WEIGHTS / "lipsync.pt"
SHIPPED_LIPSYNC = LIPSYNC_WEIGHTS / "lipsync.onnx"
"""The fine-tune's default start: a training checkpoint when one is there, else the shipped ONNX
model (its torch network rebuilt from the export: ``models.lipsync.network.from_onnx``)."""
STAGES = ("check", "extract", "loop", "train", "lipsync", "export", "card")


class BuildError(Exception):
    """The input cannot become an avatar (or the build was started differently); says why."""


@dataclass
class BuildOptions:
    """What to build; 0 / empty means the default for the device the build runs on."""

    videos: tuple[Path, ...]
    name: str
    root: Path
    """Folder that holds avatars; the avatar is ``root/name``."""
    size: int = 0
    """Mouth crop side: 256 on a GPU, 128 on the CPU (a CPU trains 256 px far too slowly)."""
    mode: str = "temporal"
    steps: int = 0
    """Generator training steps: 6000 on a GPU; on the CPU, as many as ``minutes`` allows."""
    minutes: float = 60.0
    """CPU builds: the whole build's time budget in minutes (sets the training steps when
    ``steps`` is 0)."""
    ngf: int = 0
    """Generator width: 32 on a GPU, 16 on the CPU."""
    batch: int = 0
    """Pairs per step: 8 on a GPU, 4 on the CPU."""
    heldout: float = 0.2
    """Fraction of each video kept out of training for the model card's evaluation (one block)."""
    heldout_at: float = 0.8
    """Where that block starts, as a fraction of each video: the last 20% by default (nothing
    after it trains); GRID's avatar used 0.4, the middle, because its clips end in silence."""
    temporal_l1: float = 100.0
    """Weight of the frame-change L1 in temporal mode (``TrainConfig.temporal_l1``); 0: the
    temporal discriminator alone, as in Everybody Dance Now."""
    feature_matching: float = 10.0
    """``TrainConfig.feature_matching`` (pix2pixHD's weight)."""
    mouth_l1: float = 50.0
    """``TrainConfig.mouth_l1``: extra L1 inside the lips."""
    edge_l1: float = 50.0
    """``TrainConfig.edge_l1``: L1 of image gradients inside the lips (teeth edges)."""
    loop_seconds: tuple[float, float] = (4.0, 10.0)
    """Shortest and longest base-video loop."""
    compare: bool = True
    """Also train plain pix2pix, for the model card's comparison with the time-dependent model."""
    ablate: bool = False
    """Also train the time-dependent model without the frame-change L1 (the card gets its row)."""
    warm_start: float = 0.5
    """Progressive training: plain pix2pix trains first, and the time-dependent model starts from
    its checkpoint at this fraction of the steps (the ``previous`` input's filters at zero) and
    trains the rest, so both have the same number of steps. 0: the time-dependent model starts
    from scratch. On lieu at 600 steps: +1.2 dB held-out PSNR over starting from scratch."""
    min_seconds: float = 20.0
    """Least total talking footage."""
    lipsync_base: Path | None = None
    """Lip-sync model to fine-tune (``.pt`` or an exported ``.onnx``); None:
    ``models/lipsync/weights/lipsync.pt`` when present, else the shipped ``lipsync.onnx``."""
    lipsync_steps: int = 250
    """Most steps of the lip-sync fine-tune; the step kept is the best on the validation speech."""
    lipsync_val: float = 0.2
    """Share of the training speech before the held-out block that validates the fine-tune."""
    device: str = "auto"
    """``auto``: CUDA when torch sees a GPU, else the CPU."""
    threads: int = 1
    restart: bool = False
    """Discard an earlier, unfinished build of this name."""
    limits: Limits = field(default_factory=Limits)

    def resolved(self) -> "BuildOptions":
        dev = self.device
        if dev == "auto":
            import torch

            dev = "cuda" if torch.cuda.is_available() else "cpu"
        gpu = dev.startswith("cuda")
        return replace(self, device=dev, size=self.size or (256 if gpu else 128), steps=self.steps or (6000 if gpu else 0),
                       ngf=self.ngf or (32 if gpu else 16), batch=self.batch or (8 if gpu else 4),
                       limits=replace(self.limits, min_seconds=self.min_seconds))


def _fmt_s(s: float) -> str:
    s = max(0.0, s)
    return f"{s / 60:.0f}m{s % 60:02.0f}s" if s >= 60 else f"{s:.0f}s"


def stderr_say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class AvatarBuilder:
    """Runs the stages; ``say`` receives one progress line at a time."""

    def __init__(self, opts: BuildOptions, say: Callable[[str], None] = stderr_say) -> None:
        if not opts.name or any(c in opts.name for c in "/\\") or opts.name.startswith("."):
            raise BuildError(f"avatar name {opts.name!r}: use a plain name like 'anna'")
        if not opts.videos:
            raise BuildError("no VIDEO given")
        self.o = opts.resolved()
        self.say = say
        self.folder = Path(self.o.root) / self.o.name
        self.work = self.folder / "work"
        self.crop = CropConfig(size=self.o.size)

    # --- bookkeeping -------------------------------------------------------------------------
    def _stage(self, i: int, text: str) -> None:
        self.say(f"[{i + 1}/{len(STAGES)} {STAGES[i]}] {text}")

    def _settings(self) -> dict:
        o = self.o
        return {"videos": [str(Path(v).resolve()) for v in o.videos], "size": o.size, "mode": o.mode, "ngf": o.ngf,
                "batch": o.batch, "heldout": o.heldout, "heldout_at": o.heldout_at, "temporal_l1": o.temporal_l1,
                "compare": o.compare, "ablate": o.ablate, "warm_start": o.warm_start, "feature_matching": o.feature_matching, "mouth_l1": o.mouth_l1,
                "edge_l1": o.edge_l1, "loop_seconds": list(o.loop_seconds),
                "lipsync_val": o.lipsync_val}

    def _open_work(self) -> None:
        if self.o.restart and self.folder.exists():
            shutil.rmtree(self.folder)
        self.work.mkdir(parents=True, exist_ok=True)
        f = self.work / "options.json"
        mine = self._settings()
        if f.is_file():
            theirs = json.loads(f.read_text())
            diff = sorted(k for k in mine if theirs.get(k) != mine[k])
            if diff:
                raise BuildError(f"avatar {self.o.name!r} was started with other settings ({', '.join(diff)});"
                                 " run the same command to resume, or add --restart to start over")
            self.say(f"resuming the build of {self.o.name!r} in {self.folder}")
        f.write_text(json.dumps(mine, indent=1))

    # --- stages ------------------------------------------------------------------------------
    def check(self) -> float:
        """Cheap refusals before minutes of work; returns seconds of usable footage."""
        import cv2

        from models.lipsync.video import VideoError, read_audio

        total = 0.0
        for v in self.o.videos:
            v = Path(v)
            if not v.is_file():
                raise BuildError(f"{v}: no such file")
            try:
                audio, rate = read_audio(v)
            except VideoError as exc:
                raise BuildError(str(exc)) from None
            cap = cv2.VideoCapture(str(v))
            fps, frames = cap.get(cv2.CAP_PROP_FPS) or 25.0, cap.get(cv2.CAP_PROP_FRAME_COUNT)
            cap.release()
            if frames <= 0:
                raise BuildError(f"{v}: no video frames could be read")
            total += min(len(audio) / rate, frames / fps)
        if total < self.o.min_seconds:
            raise BuildError(f"too short: {total:.1f} s of talking video in {len(self.o.videos)} file(s), need"
                             f" {self.o.min_seconds:.0f} s; film longer (a minute or more is better) or give more clips")
        return total

    def _cache_name(self, v: Path) -> Path:
        st = v.stat()
        key = json.dumps([str(v.resolve()), st.st_size, st.st_mtime_ns, self.crop.to_dict()])
        return self.work / "data" / f"{v.stem}-{hashlib.sha256(key.encode()).hexdigest()[:10]}.npz"

    def extract(self) -> list[FaceClip]:
        from models.lipsync.video import VideoError

        clips = []
        t0 = time.time()
        limits = replace(self.o.limits, min_seconds=0.0)  # the total was checked; short clips may add up
        for i, v in enumerate(map(Path, self.o.videos)):
            path = self._cache_name(v)
            if path.is_file():
                clips.append(FaceClip.load(path))
                continue
            t1 = time.time()

            def tracked(done, total, v=v, t1=t1):
                if total:
                    eta = (time.time() - t1) / done * (total - done)
                    self._stage(1, f"{v.name}: landmarks {done}/{total} frames ETA {_fmt_s(eta)}")

            try:
                clip = extract(v, self.crop, limits, progress=tracked)
            except VideoError as exc:
                raise BuildError(str(exc)) from None
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.stem + ".tmp.npz")
            clip.save(tmp)
            tmp.replace(path)
            clips.append(clip)
            done = i + 1
            eta = (time.time() - t0) / done * (len(self.o.videos) - done)
            self._stage(1, f"{v.name}: {len(clip)} frames ({done}/{len(self.o.videos)} videos) ETA {_fmt_s(eta)}")
        return clips

    def variants(self) -> list[tuple[str, str, float]]:
        """(name, network mode, frame-change L1 weight) of every generator to train; the first ships."""
        o = self.o
        tl1 = o.temporal_l1 if o.mode == "temporal" else 0.0
        out = [(o.mode, o.mode, tl1)]
        if o.compare and o.mode != "pix2pix":
            out.append(("pix2pix", "pix2pix", 0.0))
        if o.ablate and tl1 > 0:
            out.append(("temporal_nol1", "temporal", 0.0))
        return out

    def frames(self, clips: list[FaceClip]):
        from .frames import FrameSet

        return FrameSet(clips, self.o.heldout, self.o.heldout_at)

    def warm_steps(self, steps: int) -> int:
        """Steps of plain pix2pix the time-dependent models start from (0: from scratch)."""
        if self.o.mode != "temporal" or not 0 < self.o.warm_start < 1:
            return 0
        return max(1, min(steps - 1, int(round(steps * self.o.warm_start))))

    def schedule(self, steps: int) -> list[tuple[str, str, float, int, int]]:
        """(checkpoint name, mode, frame-change L1, from step, to step) in training order. With a
        warm start, pix2pix trains first (to the warm step, where it is snapshotted, then on to
        ``steps`` when it is compared) and each time-dependent model trains from the snapshot."""
        variants = self.variants()
        k = self.warm_steps(steps)
        if not k:
            return [(n, m, t, 0, steps) for n, m, t in variants]
        p2p = [v for v in variants if v[1] == "pix2pix"]
        out = [("pix2pix", "pix2pix", 0.0, 0, k)]
        if p2p:
            out.append(("pix2pix", "pix2pix", 0.0, k, steps))
        return out + [(n, m, t, k, steps) for n, m, t in variants if m != "pix2pix"]

    def train(self, clips: list[FaceClip]) -> dict[str, Path]:
        from .train import plot_history, train, warm_start

        frames = self.frames(clips)
        steps, step_s = self.plan_steps(frames)
        plan = self.schedule(steps)
        k = self.warm_steps(steps)
        snapshot = self.work / "pix2pix_warm.pt"
        left_s = [sum((b - a) * step_s.get(n, 0.0) for n, _, _, a, b in plan[i + 1:]) for i in range(len(plan))]
        for i, (name, mode, tl1, first, last) in enumerate(plan):
            cfg = self.train_config(mode, tl1, last)
            ckpt = self.work / f"{name}.pt"
            if mode == "temporal" and k and not ckpt.is_file():
                warm_start(snapshot, cfg, ckpt, self.crop)
                self._stage(3, f"{name} starts from pix2pix at step {k}")

            def report(step, total, losses, eta, name=name, later=left_s[i]):
                left = eta + later + self._reserve_s()
                self._stage(3, f"{name} step {step}/{total} L1 {losses['l1']:.4f} G {losses['g']:.3f}"
                               f" D {losses['d']:.3f} ETA {_fmt_s(eta)} (build ETA {_fmt_s(left)})")

            train(frames, cfg, ckpt, self.crop, report, report_every=max(1, min(50, steps // 10)),
                  device=self.o.device)
            if mode == "pix2pix" and last == k and not snapshot.is_file():
                tmp = snapshot.with_suffix(".tmp")
                shutil.copyfile(ckpt, tmp)
                tmp.replace(snapshot)
        import torch

        out = {}
        for name, _, _ in self.variants():
            ckpt = self.work / f"{name}.pt"
            plot_history(torch.load(ckpt, map_location="cpu", weights_only=False)["history"],
                         self.work / f"loss_{name}.png", name)
            out[name] = ckpt
        return out

    def train_config(self, mode: str, temporal_l1: float, steps: int) -> TrainConfig:
        o = self.o
        return TrainConfig(net=NetConfig(mode=mode, size=o.size, ngf=o.ngf, ndf=o.ngf), steps=steps, batch=o.batch,
                           threads=o.threads, temporal_l1=temporal_l1, feature_matching=o.feature_matching,
                           mouth_l1=o.mouth_l1, edge_l1=o.edge_l1,
                           checkpoint_every=max(10, min(TrainConfig.checkpoint_every, steps // 5)))

    def _reserve_s(self) -> float:
        """Time kept for the stages after training (lip-sync, export, evaluation): 1-3 minutes
        measured on the CPU at 128 px; a minute plus a twelfth of the budget covers it."""
        return 60.0 + self.o.minutes * 60.0 / 12

    def plan_steps(self, frames) -> tuple[int, dict[str, float]]:
        """(training steps per generator, seconds per step per generator). ``--steps`` when
        given; else the budget left after what the build spent so far (``work/timing.json``),
        less the reserve for later stages, shared out at the step times measured here on a few
        steps. Saved in ``work/plan.json`` on first use, so a resumed build (the same ``--steps``
        and ``--minutes``) keeps its plan; other values make a new plan, and training continues
        from its checkpoint to the new step count."""
        plan_file = self.work / "plan.json"
        asked = {"requested_steps": self.o.steps, "minutes": self.o.minutes}
        if plan_file.is_file():
            plan = json.loads(plan_file.read_text())
            if all(plan.get(k) == v for k, v in asked.items()):  # the same command: the same plan
                return int(plan["steps"]), plan["step_s"]
            self._stage(3, f"new plan for --steps {self.o.steps} --minutes {self.o.minutes:g} (the saved one was for"
                           f" --steps {plan.get('requested_steps')} --minutes {plan.get('minutes')})")
        import torch

        from .train import MouthGAN

        step_s = {}
        rng = np.random.default_rng(12345)
        # every generator the schedule trains (pix2pix also when it is only the warm start)
        timed = {n: (m, t) for n, m, t, _, _ in self.schedule(1000)}
        for name, (mode, tl1) in timed.items():
            torch.set_num_threads(self.o.threads)
            model = MouthGAN(self.train_config(mode, tl1, 1), self.o.device)
            times = []
            for _ in range(3):
                batch = frames.batch(rng, self.o.batch)
                t = time.perf_counter()
                model.set_input(batch)
                model.optimize_parameters()
                times.append(time.perf_counter() - t)
            step_s[name] = float(np.median(times[1:]))  # the first pays for allocations
        if self.o.steps:
            steps = self.o.steps
        else:
            spent = sum(self._timing().values()) + (time.time() - self._stage_t0)
            left = self.o.minutes * 60.0 - spent - self._reserve_s()
            # seconds per unit of ``steps`` over the whole schedule (a warm-started model trains only its part)
            per_step = sum((b - a) * step_s[n] for n, _, _, a, b in self.schedule(1000)) / 1000
            steps = int(max(50, min(50000, left / per_step)))
            self._stage(3, f"budget {self.o.minutes:g} min: {spent / 60:.1f} min spent, {per_step:.2f} s per"
                           f" step over {len(step_s)} generator(s) -> {steps} steps each")
        plan_file.write_text(json.dumps({"steps": steps, "step_s": step_s, **asked}, indent=1))
        return steps, step_s

    # --- time spent, over every run of the build ----------------------------------------------
    def _timing(self) -> dict[str, float]:
        f = self.work / "timing.json"
        return json.loads(f.read_text()) if f.is_file() else {}

    def _add_time(self, stage: str, seconds: float) -> None:
        t = self._timing()
        t[stage] = t.get(stage, 0.0) + seconds
        (self.work / "timing.json").write_text(json.dumps(t, indent=1))

    def loop(self, clips: list[FaceClip]) -> dict:
        """The base video loop (``base_loop.npz``), cut from the first video's training frames."""
        from .baseloop import write_loop
        from .frames import split_clip

        target = self.folder / "base_loop.npz"
        done = self.work / "loop.json"
        if target.is_file() and done.is_file():
            return json.loads(done.read_text())
        clip = clips[0]
        sp = split_clip(clip, self.o.heldout, self.o.heldout_at)
        usable = sp.start if sp.start > 0 else len(clip)
        lo, hi = self.o.loop_seconds
        try:
            ch = write_loop(target, Path(self.o.videos[0]), clip, usable, sp.reference, lo, hi)
        except ValueError as exc:
            raise BuildError(f"no base video loop: {exc}") from None
        summary = {"start": ch.start, "frames": ch.length, "seconds": round(ch.length / clip.fps, 2), "fade": ch.fade,
                   "seam": round(ch.seam, 2), "mouth_motion": round(ch.motion, 5), "video": Path(self.o.videos[0]).name}
        done.write_text(json.dumps(summary, indent=1))
        self._stage(2, f"base video: {summary['seconds']} s loop from frame {ch.start} (seam cost {ch.seam:.1f})")
        return summary

    def training_spans(self, clip: FaceClip) -> list[tuple[int, int]]:
        """Frame ranges of ``clip`` outside its held-out block."""
        from .frames import split_clip

        sp = split_clip(clip, self.o.heldout, self.o.heldout_at)
        return [(a, b) for a, b in ((0, sp.start), (sp.end, len(clip))) if b > a]

    def lipsync_spans(self, clips: list[FaceClip]) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(clip index, start, end) of the lip-sync fine-tune's training and validation speech.
        Both come from the training frames; the validation stretch is the last
        ``lipsync_val`` of the span just before each held-out block (when that leaves 2 s on both
        sides), so choosing the fine-tune's length never looks at the held-out block."""
        train, val = [], []
        for i, c in enumerate(clips):
            for a, b in self.training_spans(c):
                held_after = b < len(c)  # this span ends where the held-out block starts
                k = int(round(self.o.lipsync_val * (b - a))) if held_after else 0
                if k >= 2 * c.fps and b - k - a >= 2 * c.fps:
                    train.append((i, a, b - k))
                    val.append((i, b - k, b))
                elif b - a >= 2 * c.fps:
                    train.append((i, a, b))
        return train, val

    def audio_lags(self, clips: list[FaceClip]) -> list[dict]:
        """Per video, how many frames its sound comes after its picture (training frames only)."""
        from .dataset import audio_lag

        out = []
        for c in clips:
            lag, info = audio_lag(c, self.training_spans(c))
            out.append(info)
            if lag:
                self._stage(1, f"{c.name}: the sound comes {lag} frame(s) ({lag / c.fps * 1000:.0f} ms) after the picture"
                               f" (lip-sync corr {info['corr_0']:.2f} at 0, {info['corr_best']:.2f} there): corrected")
        self.lags = [int(i.get("lag_frames", 0)) for i in out]
        return out

    def lipsync(self, clips: list[FaceClip]) -> dict:
        base = self.o.lipsync_base or (DEFAULT_LIPSYNC_BASE if DEFAULT_LIPSYNC_BASE.is_file() else SHIPPED_LIPSYNC)
        target = self.folder / "lipsync.onnx"
        done = self.work / "lipsync.json"
        if done.is_file() and target.is_file():
            return json.loads(done.read_text())
        if not Path(base).is_file():
            self._stage(4, f"skipped: no lip-sync checkpoint at {base} (train models.lipsync, or pass --lipsync-base)")
            top = LIPSYNC_WEIGHTS.parents[2]  # the folder holding the models package
            shown = Path(base).relative_to(top) if Path(base).is_relative_to(top) else Path(base).name
            return {"skipped": f"no lip-sync checkpoint at {shown}"}
        from .finetune import finetune

        def report(step, total, loss, eta):
            self._stage(4, f"step {step}/{total} loss {loss:.4f} ETA {_fmt_s(eta)}")

        # Only the training frames' speech: the held-out block's audio is evaluation material too.
        lags = getattr(self, "lags", [0] * len(clips))
        spans, val_spans = self.lipsync_spans(clips)
        parts = [clips[i].segment(a, b, lags[i]).lipsync_clip() for i, a, b in spans]
        val = [clips[i].segment(a, b, lags[i]).lipsync_clip() for i, a, b in val_spans]
        if not parts:
            raise BuildError("no training stretch of 2 s or more outside the held-out block for the lip-sync fine-tune")
        summary = finetune(Path(base), parts, target, steps=self.o.lipsync_steps, progress=report, val=val or None)
        if val:
            self._stage(4, f"kept step {summary['kept_step']} of {self.o.lipsync_steps}: opening r on {len(val)} validation"
                           f" stretch(es) {summary['val_corr_before']:.2f} -> {summary['val_corr_kept']:.2f}")
        done.write_text(json.dumps(summary, indent=1))
        return summary

    def export(self, ckpts: dict[str, Path]) -> float:
        from .export import export
        from .train import load_generator

        g, ckpt = load_generator(ckpts[self.o.mode])
        worst = export(g, ckpt["crop"], self.folder / "generator.onnx", {"data": ckpt["data"], "steps": ckpt["step"]},
                       fp16=True)
        if worst > 1e-3:
            raise BuildError(f"ONNX export differs from torch by {worst:.1e}: report this as a bug")
        self._stage(5, f"generator.onnx written (parity {worst:.1e}); generator_fp16.onnx for the GPU")
        return worst

    def card(self, clips: list[FaceClip], ckpts: dict[str, Path], lipsync: dict, parity: float, seconds: float) -> dict:
        import cv2

        from .card import evaluate_all, samples_image, write_card
        from .train import load_generator

        gens = {name: load_generator(p) for name, p in ckpts.items()}
        data = gens[self.o.mode][1]["data"]
        results = evaluate_all(gens, clips, data)
        (self.folder / "eval.json").write_text(json.dumps(results, indent=1))
        cv2.imwrite(str(self.folder / "samples.jpg"), samples_image(gens, clips, data), [cv2.IMWRITE_JPEG_QUALITY, 90])
        for name in ckpts:
            shutil.copyfile(self.work / f"loss_{name}.png", self.folder / f"loss_{name}.png")
        first, ref = clips[0], data["references"][0]
        cv2.imwrite(str(self.folder / "portrait.png"), rest_frame(Path(self.o.videos[0]), ref))
        cv2.imwrite(str(self.folder / "reference.png"), first.crops[ref])
        ckpt = gens[self.o.mode][1]
        meta = {"version": 1, "name": self.o.name, "generator": "generator.onnx", "generator_fp16": "generator_fp16.onnx",
                "portrait": "portrait.png", "reference": "reference.png",
                "lipsync": "lipsync.onnx" if (self.folder / "lipsync.onnx").is_file() else "",
                "crop": self.crop.to_dict(), "net": ckpt["net"], "train": {k: v for k, v in ckpt["train"].items() if k != "net"},
                "steps": ckpt["step"], "fps": first.fps, "sources": [Path(v).name for v in self.o.videos],
                "footage_s": round(seconds, 2), "device": self.o.device, "onnx_parity": parity,
                "heldout": self.o.heldout, "heldout_at": self.o.heldout_at,
                "base_loop": "base_loop.npz" if (self.folder / "base_loop.npz").is_file() else "",
                "audio_lag_frames": getattr(self, "lags", []), "audio_lag": getattr(self, "lag_info", []),
                "loop": getattr(self, "base_loop", {}),
                "build_minutes": round((sum(self._timing().values()) + time.time() - self._stage_t0) / 60, 2),
                "timing_s": {k: round(v, 1) for k, v in self._timing().items()},
                "eval": {k: v["pooled"] for k, v in results.items()}, "lipsync_finetune": lipsync,
                "built": time.strftime("%Y-%m-%d %H:%M:%S")}
        (self.folder / "avatar.json").write_text(json.dumps(meta, indent=1))
        write_card(self.folder / "MODEL_CARD.md", meta, results, clips, data)
        return results

    def _timed(self, stage: str, fn, *args):
        """Run one stage, adding its time (also when interrupted) to ``work/timing.json``."""
        self._stage_t0 = time.time()
        try:
            return fn(*args)
        finally:
            self._add_time(stage, time.time() - self._stage_t0)

    def run(self) -> Path:
        t0 = self._stage_t0 = time.time()
        self._stage(0, f"{len(self.o.videos)} video(s) for avatar {self.o.name!r} on {self.o.device}, {self.o.size} px")
        seconds = self.check()
        self._open_work()
        self._add_time("check", time.time() - t0)
        self._stage(1, f"{seconds:.1f} s of footage; finding faces and landmarks")
        clips = self._timed("extract", self.extract)
        self.lag_info = self._timed("extract", self.audio_lags, clips)
        self._stage(2, f"{sum(len(c) for c in clips)} frames; choosing the base video loop")
        self.base_loop = self._timed("loop", self.loop, clips)
        self._stage(3, f"training {self.o.steps or 'budgeted'} steps per generator")
        ckpts = self._timed("train", self.train, clips)
        lipsync = self._timed("lipsync", self.lipsync, clips)
        parity = self._timed("export", self.export, ckpts)
        results = self._timed("card", self.card, clips, ckpts, lipsync, parity, seconds)
        p = results[self.o.mode]["pooled"]
        self._stage(6, f"held-out PSNR {p['psnr']:.2f} dB, SSIM {p['ssim']:.3f}, flicker {p['flicker']:.2f};"
                       f" build time over all runs {sum(self._timing().values()) / 60:.1f} min")
        self.say(f"avatar {self.o.name!r} ready in {self.folder} ({_fmt_s(time.time() - t0)});"
                 f" set renderer.neural.avatar = \"{self.o.name}\"")
        return self.folder


def options_dict(o: BuildOptions) -> dict:
    d = asdict(o)
    d["videos"] = [str(v) for v in o.videos]
    return d
