"""Person-specific neural avatars on the CPU, judged on the part of each recording they never saw.

``python bench/avatar.py`` builds (or reuses: ``--reuse``, the default when the avatar folder is
complete) one avatar per recording of ``../shared/data/talking/single`` with
``assistant avatar build``'s own builder, holding out the last 20% of each recording (frames and
audio), then measures on that held-out tail:

- ``heldout_psnr_mouth`` / ``heldout_ssim_mouth``: the generator driven by the real held-out
  landmarks, inside the blend mask (the build's model card evaluation, ``eval.json``);
- ``heldout_psnr_mouth_audio`` / ``heldout_ssim_mouth_audio``: the same, driven from the
  held-out audio (audio -> mouth landmarks -> generator), against the real frames at the same times;
- ``heldout_lipsync_corr``: dlib's inner-lip opening on the audio-driven frames as the renderer
  shows them (``LoopSynth``: the base video loop with the generated mouth) against dlib's opening
  on the real held-out frames, Pearson at lag 0; ``heldout_lipsync_corr_real_frames``: the
  generated mouth inserted into the real held-out frames instead; the chain in parts:
  ``heldout_landmarks_corr_audio`` (the driven mouth opening against the tracked one, no pixels)
  and ``heldout_lipsync_corr_from_real_landmarks`` (the shown frames driven by the real held-out
  landmarks instead of the audio);
- ``flicker_temporal`` / ``flicker_pix2pix`` (and their PSNRs): the time-dependent generator
  against plain pix2pix trained on the same frames for the same steps;
- ``sharpness_ratio``: variance of the Laplacian in the mouth (inside the blend mask), generated
  (from real landmarks) / real, mean over the held-out frames;
- ``composited_fps_2cores``: whole frames from ``LoopSynth`` at the base video's resolution
  (onnxruntime and OpenCV on 2 threads), wall clock on this machine as loaded now; also
  ``composited_fps_cpu_time`` (frames per second of CPU time: what a quiet machine gives) and
  the rate scaled to 1920x1080 output;
- ``build_minutes``: the build's time summed over all its runs (``avatar.json``).

A strip of real (top) vs generated (bottom: the mouth generated from the frame's real landmarks
and inserted) held-out frames, lower face at 200 px, is written beside each avatar
(``strip_heldout.jpg``, under the git-ignored avatars folder: these are real people).
The last stdout line is the JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)  # not bench/: its email.py would shadow the standard library's email package

import cv2  # noqa: E402
import numpy as np  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "talking" / "single"
RECORDINGS = ("lieu", "obama")


def inner_opening(lm: np.ndarray) -> float:
    """dlib's inner-lip opening (61-67, 62-66, 63-65) in inter-ocular units."""
    iod = np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0)))
    return float(np.mean([np.hypot(*(lm[a] - lm[b])) for a, b in ((61, 67), (62, 66), (63, 65))]) / max(iod, 1e-6))


def openings(frames: list[np.ndarray]) -> np.ndarray:
    from bench.lib.renderer_quality import FrameMeasure

    fm = FrameMeasure(redetect=1)
    out = []
    for f in frames:
        try:
            lm, _ = fm.landmarks(f)
            out.append(inner_opening(lm))
        except ValueError:
            out.append(np.nan)
    return np.array(out)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.std(a[ok]) == 0 or np.std(b[ok]) == 0:
        return 0.0
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def sharpness(crops: np.ndarray, mask: np.ndarray) -> float:
    v = []
    for c in crops:
        lap = cv2.Laplacian(cv2.cvtColor(c, cv2.COLOR_BGR2GRAY), cv2.CV_64F)
        v.append(lap[mask].var())
    return float(np.mean(v))


def build(name: str, args) -> tuple[Path, bool]:
    from models.neural.build import AvatarBuilder, BuildOptions

    folder = args.avatars / name
    if args.reuse and (folder / "avatar.json").is_file() and (folder / "base_loop.npz").is_file():
        return folder, True
    opts = BuildOptions(videos=(args.data / f"{name}.mp4",), name=name, root=args.avatars, minutes=args.minutes,
                        threads=args.threads, device="cpu", steps=args.steps, min_seconds=args.min_seconds,
                        size=args.size, ngf=args.ngf, lipsync_base=args.lipsync_base,
                        **({"loop_seconds": (1.0, 3.0), "lipsync_steps": 10} if args.smoke else {}))
    AvatarBuilder(opts).run()
    return folder, False


def held_frames(video: Path, start: int, end: int) -> list[np.ndarray]:
    from models.neural.dataset import iter_frames

    out = []
    for t, f in enumerate(iter_frames(video)):
        if t >= end:
            break
        if t >= start:
            out.append(f)
    return out


def upscaled_loop(src: Path, dst: Path, size: tuple[int, int], frames: int) -> Path:
    """The first ``frames`` of a base loop scaled (aspect kept, then padded) to ``size``."""
    z = np.load(src)
    w, h = (int(v) for v in z["size"])
    f = min(size[0] / w, size[1] / h)
    jpegs = []
    for k in range(min(frames, len(z["offsets"]) - 1)):
        img = cv2.imdecode(z["jpeg"][z["offsets"][k]:z["offsets"][k + 1]], cv2.IMREAD_COLOR)
        canvas = np.zeros((size[1], size[0], 3), np.uint8)
        sw, sh = round(w * f), round(h * f)
        canvas[:sh, :sw] = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_CUBIC)
        jpegs.append(cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].reshape(-1))
    n = len(jpegs)
    to_crop = z["to_crop"][:n].copy()
    to_crop[:, :, :2] /= f
    np.savez(dst, jpeg=np.concatenate(jpegs), offsets=np.cumsum([0] + [len(j) for j in jpegs]), to_crop=to_crop,
             landmarks=z["landmarks"][:n] * f, reference=z["reference"], rest_mouth=z["rest_mouth"], fps=z["fps"],
             start=z["start"], fade=z["fade"], size=np.array(size))
    return dst


def measure(name: str, folder: Path, reused: bool, args) -> dict:
    from assistant.face.lstm_driver import DEFAULT_MODEL, LstmDriver
    from models.neural.build import AvatarBuilder, BuildOptions
    from models.neural.dataset import FaceClip
    from models.neural.evaluate import generate_sequence, mask_of, scores
    from models.lipsync.dataset import SAMPLE_RATE
    from services.renderer.drivers import drive
    from services.renderer.neural import BaseLoop, LoopSynth, MouthGenerator, NeuralAvatar, composite

    meta = json.loads((folder / "avatar.json").read_text())
    ev = json.loads((folder / "eval.json").read_text())
    video = args.data / f"{name}.mp4"
    b = AvatarBuilder(BuildOptions(videos=(video,), name=name, root=folder.parent, size=meta["crop"]["size"], device="cpu"))
    clip = FaceClip.load(b._cache_name(video))
    avatar = NeuralAvatar.load(folder, [])
    gen = MouthGenerator(avatar.generator, prefer_gpu=False, threads=args.threads)
    from models.neural.frames import split_clip

    sp = split_clip(clip, meta["heldout"], meta["heldout_at"])
    start, end = sp.start, sp.end
    if end < len(clip) - 1 and meta["heldout_at"] >= 0.8:
        raise SystemExit(f"{name}: held-out block {start}-{end} is not the recording's tail")
    mask = mask_of(clip.crop)
    ref = clip.crops[sp.reference]
    real = clip.crops[start:end]
    from_marks = generate_sequence(gen, clip.drawings[start:end], ref, gen.temporal)
    # audio -> landmarks -> generator, from the held-out audio only
    per = SAMPLE_RATE / clip.fps
    lag = int((meta.get("audio_lag_frames") or [0])[0])  # the recording's own A/V offset, found on training frames
    pcm = np.clip(clip.audio[int((start + lag) * per):int((end + lag) * per)] * 32767, -32768, 32767).astype(np.int16)
    lip = avatar.lipsync or DEFAULT_MODEL
    driver = LstmDriver(lip, threads=1, prefer_gpu=False)
    # the driver gives canonical mouths; the renderer (its timeline) hands the synth offsets from the driver's neutral
    mouths = drive(driver, pcm, SAMPLE_RATE, clip.fps, [], "") - np.asarray(driver.neutral, np.float32)[None]
    n = min(len(mouths), end - start)
    loop = BaseLoop(avatar.base_loop)
    synth = LoopSynth(loop, gen, avatar.crop)
    from assistant.face.mouth_crop import draw_mouth, image_to_crop, warp_to_crop

    drawings = np.stack([draw_mouth(synth.mouth_points(m), clip.crop.size) for m in mouths[:n]])
    from_audio = generate_sequence(gen, drawings, ref, gen.temporal)
    s_audio = scores(from_audio, real[:n], mask)
    frames_real = held_frames(video, start, start + n)
    shown = []
    synth.reset()
    for m in mouths[:n]:
        shown.append(synth.render_native(m))
    inserted = []
    for k, f in enumerate(frames_real):
        f = f.copy()
        composite(f, from_audio[k], clip.to_crop[start + k], avatar.crop.alpha())
        inserted.append(f)
    # the same chain from the real held-out landmarks instead of the audio: what the pixels lose
    from assistant.face.geometry import MOUTH, mouth_opening, to_canonical

    canon = np.stack([to_canonical(lm)[MOUTH] for lm in clip.landmarks[start:start + n].astype(np.float64)])
    synth.reset()
    shown_marks = [synth.render_native(m) for m in canon - loop.rest_mouth[None]]
    driven = mouth_opening(mouths[:n] + np.asarray(driver.neutral, np.float64)[None])
    o_real, o_loop, o_ins = openings(frames_real), openings(shown), openings(inserted)
    o_marks = openings(shown_marks)
    # the strip: real held-out frames over the generated mouth (real landmarks) in the same frames
    strip_idx = np.linspace(0, n - 1, 6).astype(int)
    top, bottom = [], []
    for k in strip_idx:
        f = frames_real[k].copy()
        composite(f, from_marks[k], clip.to_crop[start + k], avatar.crop.alpha())
        # the lower face, 200 px, framed by the real frame's landmarks (eyes at the top edge)
        view = image_to_crop(clip.landmarks[start + k].astype(np.float64), (0.0, 0.85), 1.05, 200)
        top.append(warp_to_crop(frames_real[k], view, 200))
        bottom.append(warp_to_crop(f, view, 200))
    cv2.imwrite(str(folder / "strip_heldout.jpg"), np.vstack([np.hstack(top), np.hstack(bottom)]), [cv2.IMWRITE_JPEG_QUALITY, 90])
    # composited frame rate on 2 threads
    cv2.setNumThreads(2)
    gen2 = MouthGenerator(avatar.generator, prefer_gpu=False, threads=2)
    fps = {}
    for label, size in (("native", None), ("1080p", (1920, 1080))):
        s2 = LoopSynth(loop, gen2, avatar.crop, out_size=size)
        rest = mouths[: args.fps_frames]
        s2.render(rest[0])
        w, c = time.perf_counter(), time.process_time()
        for k in range(args.fps_frames):
            s2.render(mouths[k % n])
        fps[label] = (args.fps_frames / (time.perf_counter() - w), args.fps_frames / (time.process_time() - c))
    # a 1080p base video (none is in our data): the loop's frames scaled up, affines and landmarks with them
    big = upscaled_loop(avatar.base_loop, folder / "base_loop_1080p.npz", (1920, 1080), 50)
    big_loop = BaseLoop(big)
    big_loop._decoded = None  # a real 10 s 1080p loop (1.5 GB decoded) decodes each frame as it is shown
    s3 = LoopSynth(big_loop, gen2, avatar.crop)
    s3.render(mouths[0])
    w, c = time.perf_counter(), time.process_time()
    m = min(args.fps_frames, 100)
    for k in range(m):
        s3.render(mouths[k % n])
    fps["1080p_base"] = (m / (time.perf_counter() - w), m / (time.process_time() - c))
    t, p = ev["temporal"]["pooled"], ev["pix2pix"]["pooled"]
    return {
        "reused_avatar": reused,
        "heldout_frames": int(end - start), "heldout_s": round((end - start) / clip.fps, 2),
        "crop_px": int(clip.crop.size), "train_steps": int(meta["steps"]),
        "heldout_lipsync_corr": round(corr(o_loop, o_real), 3),
        "heldout_lipsync_corr_real_frames": round(corr(o_ins, o_real), 3),
        # the chain in parts: audio -> landmarks alone (no pixels), and landmarks -> shown frames alone
        "heldout_landmarks_corr_audio": round(corr(driven, mouth_opening(canon)), 3),
        "heldout_lipsync_corr_from_real_landmarks": round(corr(o_marks, o_real), 3),
        "dlib_missed_frames": int(np.isnan(o_loop).sum() + np.isnan(o_real).sum()),
        "heldout_psnr_mouth": round(t["psnr"], 2), "heldout_ssim_mouth": round(t["ssim"], 3),
        "heldout_psnr_mouth_audio": round(s_audio.psnr, 2), "heldout_ssim_mouth_audio": round(s_audio.ssim, 3),
        "flicker_temporal": round(t["flicker"], 3), "flicker_pix2pix": round(p["flicker"], 3),
        "psnr_pix2pix": round(p["psnr"], 2),
        "sharpness_ratio": round(sharpness(from_marks, mask) / max(sharpness(real, mask), 1e-9), 3),
        "composited_fps_2cores": round(fps["native"][0], 1), "composited_fps_cpu_time": round(fps["native"][1], 1),
        "composited_fps_1080p_output": round(fps["1080p"][0], 1),
        "composited_fps_1080p_output_cpu_time": round(fps["1080p"][1], 1),
        "composited_fps_1080p_base": round(fps["1080p_base"][0], 1),
        "composited_fps_1080p_base_cpu_time": round(fps["1080p_base"][1], 1),
        "base_resolution": list(loop.size), "base_loop_s": round(len(loop) / loop.fps, 2),
        "audio_lag_frames": lag,
        "lipsync_model": "fine-tuned" if avatar.lipsync else "shipped lipsync.onnx (no fine-tune)",
        "lipsync_kept_step": (meta.get("lipsync_finetune") or {}).get("kept_step"),
        "lipsync_val_corr": [(meta.get("lipsync_finetune") or {}).get(k) for k in ("val_corr_before", "val_corr_kept")],
        "warm_start": json.loads((folder / "work" / "options.json").read_text()).get("warm_start", 0.0)
        if (folder / "work" / "options.json").is_file() else None,
        "build_minutes": float(meta.get("build_minutes", float("nan"))),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--avatars", type=Path, default=REPO / "build" / "avatars",
                    help="where the evaluation avatars go (git-ignored: they show real people)")
    ap.add_argument("--recordings", nargs="+", default=list(RECORDINGS))
    ap.add_argument("--no-reuse", dest="reuse", action="store_false", help="rebuild even when a finished avatar is there")
    ap.add_argument("--minutes", type=float, default=60.0, help="build budget per avatar")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=0, help="fixed steps (0: from the budget); for smoke runs")
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--ngf", type=int, default=0)
    ap.add_argument("--min-seconds", type=float, default=20.0)
    ap.add_argument("--fps-frames", type=int, default=200)
    ap.add_argument("--data", type=Path, default=DATA, help="folder of the recordings (NAME.mp4)")
    ap.add_argument("--smoke", action="store_true",
                    help="the test suite's run: a tiny budgeted build on the first 6 s of one recording, in a temp folder")
    ap.add_argument("--lipsync-base", type=Path, default=None,
                    help="lip-sync checkpoint (.pt) to fine-tune on each person's training speech (default: the builder's)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(json.dumps({"skipped": f"no recordings at {args.data}"}))
        return 0
    if args.smoke:
        import tempfile

        tmp = Path(tempfile.mkdtemp(prefix="bench-avatar-smoke-"))
        first = args.recordings[0]
        from models.neural.dataset import head_of

        head_of(args.data / f"{first}.mp4", tmp / f"{first}.mp4", 6.0)
        args.data, args.avatars, args.recordings, args.reuse = tmp, tmp / "avatars", [first], False
        args.steps, args.size, args.ngf, args.min_seconds, args.fps_frames = 4, 32, 8, 5.0, 20
    results = {}
    for name in args.recordings:
        folder, reused = build(name, args)
        results[name] = measure(name, folder, reused, args)
        print(name, json.dumps(results[name]), file=sys.stderr, flush=True)
    r = list(results.values())
    out = {
        "recordings": results,
        "heldout_lipsync_corr_min": min(x["heldout_lipsync_corr"] for x in r),
        "sharpness_ratio_min": min(x["sharpness_ratio"] for x in r),
        "composited_fps_2cores_min": min(x["composited_fps_2cores"] for x in r),
        "build_minutes_max": max(x["build_minutes"] for x in r),
        # "equal or better PSNR": within 0.1 dB of pix2pix's or above
        "flicker_temporal_below_pix2pix": all(x["flicker_temporal"] < x["flicker_pix2pix"]
                                              and x["heldout_psnr_mouth"] >= x["psnr_pix2pix"] - 0.1 for x in r),
        "reused_avatars": [k for k, x in results.items() if x["reused_avatar"]],
        "load_average": round(os.getloadavg()[0], 2),
    }
    if args.smoke:
        import shutil

        shutil.rmtree(args.data, ignore_errors=True)  # a real person's frames: not left in /tmp
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
