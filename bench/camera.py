"""Camera benchmark on the simulated physical camera with real GRID faces.

Prints progress on stderr and ONE JSON object as the last stdout line:

- fps_640x480_one_core: frames per second of detection + tracking + presence + auto-exposure
  (the per-frame pipeline, recognition excluded: it runs on another thread at ~2 Hz), pinned to
  one CPU with OpenCV single-threaded; rendering the simulated frames is not counted;
- ae_converge_frames_p95: frames from the first detection of a face to its luma staying inside
  target +- band, over scenes (backlit, mixed, plain) x people x starting exposures;
- backlit_detect_rate_{face,global}_ae: per-frame detection rate of faces wholly in view within
  2.5 m in the backlit scene (sunny window behind the visitor), visitors walking in and out;
- recog_accuracy_{face,global}_ae: single-shot recognition on the detected faces of the same walks
  (3 enrolled people must be named, 3 strangers must stay unknown);
- detect_latency_s_{face,global}_ae: per speaker, seconds from the face being wholly in view to its
  first detection (fairness: the Haar cascade found the darker-skinned ``swiz3n`` ~1.5 s late);
- backlit_detect_rate_global_ae_haar: the global baseline with the Haar cascade, which finds very
  dark faces better than MTCNN does: the strongest baseline we have;
- extra keys: the same in a harsher backlit variant (dim lobby, dirty cover glass), genuine and
  impostor descriptor distances on studio frames (how the threshold was chosen), convergence
  failures.

Run from the repository root: ``python bench/camera.py [--quick | --smoke]``. ``--smoke`` (the test
suite's run): two enrolled people and a stranger, one short walk each way, one convergence run.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(Path(__file__).resolve().parents[1])

ENROLLED = ["bbaf2n", "lwbsza", "swiz3n"]
STRANGERS = ["brbk7n", "pwij3p", "sbwe5n"]


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def main() -> int:
    import cv2

    smoke = "--smoke" in sys.argv
    quick = "--quick" in sys.argv or smoke
    cv2.setNumThreads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    from assistant.config import CameraSettings
    from hardware.camera_sim import ENROL_FRAMES, SCENE_FRAMES, PersonSprite, Walk, build_scene, clip_frames, default_faces_dir
    from bench.lib.camera_eval import run_scene
    from services.camera.recognition import FaceEmbedder, Gallery, Recognizer, largest_face

    grid = default_faces_dir()
    if grid is None:
        log("shared/data/talking/grid is missing; nothing to benchmark")
        if smoke:
            print(json.dumps({"skipped": "needs the GRID faces in ../shared/data/talking/grid"}))
            return 0
        return 1
    settings = {m: CameraSettings(ae_mode=m) for m in ("face", "global")}
    settings["global_haar"] = CameraSettings(ae_mode="global", detector="haar")
    target, band = settings["face"].target_luminance, settings["face"].target_band
    enrolled, strangers = (ENROLLED[:2], STRANGERS[:1]) if smoke else (ENROLLED, STRANGERS)
    people = enrolled + strangers
    sprites = {p: PersonSprite.from_clip(grid / f"{p}.mpg") for p in people}
    out: dict[str, float | int | str] = {}

    # 1. recognition gallery and the threshold's evidence
    log("enrolling", enrolled)
    emb = FaceEmbedder()
    gallery_dir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-camera-{os.getpid()}"
    gallery = Gallery(gallery_dir)
    for p in enrolled:
        photos = clip_frames(grid / f"{p}.mpg", ENROL_FRAMES)[:3]
        gallery.add(p, np.stack([emb.embed(f, largest_face(f)) for f in photos]))
    rec = Recognizer(gallery, settings["face"].match_threshold, emb)
    gen, imp = [], []
    for p in people:
        for f in clip_frames(grid / f"{p}.mpg", SCENE_FRAMES)[::8]:
            v = emb.embed(f, largest_face(f))
            for q, embs in gallery.people.items():
                (gen if q == p else imp).append(float(np.min(np.linalg.norm(embs - v, axis=1))))
    out.update(genuine_dist_max=round(max(gen), 3), genuine_dist_p50=round(float(np.median(gen)), 3),
               impostor_dist_min=round(min(imp), 3), impostor_dist_p50=round(float(np.median(imp)), 3),
               match_threshold=rec.threshold)
    log("studio distances: genuine max", out["genuine_dist_max"], "impostor min", out["impostor_dist_min"])

    # 2. walks in the backlit scene: detection and recognition, both exposure strategies
    def walk(sprite):
        return Walk(sprite, [(0.3, -0.9, 2.2), (2.0, -0.1, 1.2), (3.0, 0.0, 0.8), (4.0, 0.15, 0.9), (6.0, 1.3, 2.2)])

    frames = 24 if smoke else 120 if quick else 185
    times: list[float] = []
    for variant, who in (("", people[:1] if smoke else people), ("harsh_", people[:1] if smoke else people[:2] if quick else people[:4])):
        det: dict[str, list[float]] = {"face": [], "global": [], "global_haar": []}
        acc: dict[str, list[bool]] = {"face": [], "global": []}
        latency: dict[str, dict[str, float | None]] = {"face": {}, "global": {}}
        for p in who:
            scene = build_scene("backlit", walks=[walk(sprites[p])])
            if variant:
                scene.roomlit *= 0.4  # a dim lobby (~200 lux) ...
                scene.face_light *= 0.4
                scene.glare = 0.02  # ... and a smudged cover glass over the lens
            for mode in ("face", "global", "global_haar"):
                if mode == "global_haar" and variant:
                    continue
                t0 = time.perf_counter()
                run = run_scene(scene, settings[mode], frames, recognizer=None if mode == "global_haar" else rec,
                                recognise_every=10, enrolled={q: q for q in enrolled})
                rs = [r for r in run.records if r.truth_inside]
                det[mode] += [r.detected for r in rs]
                if mode == "global_haar":
                    log(f"backlit_{p} global AE + Haar: detect {run.detect_rate():.3f} ({time.perf_counter() - t0:.1f} s)")
                    continue
                acc[mode] += [r.identity == r.true_identity for r in run.records if r.identity is not None]
                first = next((r.index for r in rs if r.detected), None)
                latency[mode][p] = None if first is None else round((first - rs[0].index) / settings[mode].fps, 2)
                if mode == "face" and not variant:
                    times += [r.process_s for r in run.records]
                log(f"{variant or 'backlit_'}{p} {mode}: detect {run.detect_rate():.3f} recog {run.recog_accuracy():.3f} ({time.perf_counter() - t0:.1f} s)")
        for mode in ("face", "global"):
            out[f"{variant}backlit_detect_rate_{mode}_ae"] = round(float(np.mean(det[mode])), 3)
            out[f"{variant}recog_accuracy_{mode}_ae"] = round(float(np.mean(acc[mode])), 3) if acc[mode] else None
            out[f"{variant}recog_samples_{mode}_ae"] = len(acc[mode])
            out[f"{variant}detect_latency_s_{mode}_ae"] = latency[mode]  # type: ignore[assignment]
        if not variant:
            out["backlit_detect_rate_global_ae_haar"] = round(float(np.mean(det["global_haar"])), 3)
    out["fps_640x480_one_core"] = round(len(times) / sum(times), 1)
    out["pipeline_ms_p95"] = round(float(np.percentile(times, 95)) * 1000, 1)

    # 3. convergence from the first detection, over scenes x people x starting exposures
    conv, failures = [], 0
    starts = (0.0003,) if smoke else (0.0003, 0.03) if quick else (0.0003, 0.003, 0.0333)
    for scene_name in ("backlit",) if smoke else ("backlit", "mixed", "plain"):
        for p in enrolled[:1] if smoke else enrolled[:2]:
            scene = build_scene(scene_name, walks=[Walk(sprites[p], [(0.0, 0.0, 1.0), (3.0, 0.2, 0.9)])])
            for e in starts:
                run = run_scene(scene, settings["face"], 30 if smoke else 60, exposure_s=e)
                first = next((r.index for r in run.records if r.detected), None)
                c = run.converge_frames(target, band)
                if first is None or c is None:
                    failures += 1
                    conv.append(60)
                else:
                    conv.append(max(0, c - first))
                log(f"converge {scene_name} {p} start {e * 1000:.1f} ms: first detection {first}, in band at {c}")
    out["ae_converge_frames_p95"] = float(np.percentile(conv, 95))
    out["ae_converge_frames_max"] = int(max(conv))
    out["ae_converge_failures"] = failures
    for f in gallery_dir.glob("*"):
        f.unlink()
    gallery_dir.rmdir()
    keys = ["fps_640x480_one_core", "ae_converge_frames_p95", "backlit_detect_rate_face_ae", "backlit_detect_rate_global_ae",
            "recog_accuracy_face_ae", "recog_accuracy_global_ae"]
    print(json.dumps({**{k: out[k] for k in keys}, **{k: v for k, v in out.items() if k not in keys}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
