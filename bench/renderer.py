"""Renderer benchmark: engine frame rates, then the live service's A/V offset, drops and first frame.

Run from the repository root: ``python bench/renderer.py [--smoke]``. Progress goes to stderr; the
last stdout line is one JSON object. ``--smoke`` (the test suite's run): every stage, briefly.

1. Engines: frames per second while speaking at 720p and 1080p (rendering on ONE OpenCV
   thread, the renderer's budget on a 2-core kiosk), uncapped.
1b. Quality (``bench.lib.renderer_quality``): three portraits (the default, closed lips; a smile
   showing teeth; lips apart; and, outside the headline, a real open mouth showing teeth) driven by real speech's phone
   alignment (LibriVox, when ../shared/data is there; else a built-in phoneme script) through
   the viseme driver, rendered at 1920x1080 (the output size) with head motion, re-measured by dlib (68 points and
   face descriptor). Headline keys are the worst portrait's; ``quality`` has each one.
2. Live (``bench/renderer_live.py``): a broker, the renderer service and a voice on the bus
   (the voice service with its WAV speaker twin when it exists, else the test-side stand-in
   ``tests/voice_twin.py``, whose speaker plays sample ``i`` at ``play_at + i / rate``). The
   A/V offset of every speech frame is its shown time minus the time the speaker played the
   sound its mouth shows; dropped frames are frame slots never shown; the first frame is the
   first one showing the utterance, after ``play_at``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
# The folder comes back at the end of the path, after the standard library, for renderer_live.
_HERE = str(Path(__file__).resolve().parent)
sys.path[0] = str(Path(__file__).resolve().parents[1])
sys.path.append(_HERE)

from services.renderer.avatar import Avatar  # noqa: E402
from services.renderer.idle import IdleLife  # noqa: E402
from assistant.config.schema import RendererSettings  # noqa: E402
from services.renderer.synth import FaceSynth  # noqa: E402
from services.renderer.timeline import Timeline  # noqa: E402

FPS = 30.0
SR = 16000


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def speech() -> np.ndarray:
    """A LibriVox clip when the shared data is there, else syllable-like noise bursts."""
    for folder in (Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librivox",):
        files = sorted(folder.glob("*.wav"))
        if files:
            import soundfile as sf

            pcm, sr = sf.read(files[0], dtype="int16")
            if sr == SR:
                return pcm if pcm.ndim == 1 else pcm[:, 0]
    rng = np.random.default_rng(0)
    t = np.arange(6 * SR) / SR
    return (rng.normal(0, 1, len(t)) * np.clip(np.sin(2 * np.pi * 3 * t), 0, 1) * 6000).astype(np.int16)


def rms_mouths(pcm: np.ndarray) -> np.ndarray:
    """The simplest mouth driver: the jaw opens with loudness (canonical offsets from neutral)."""
    x = pcm.astype(np.float32) / 32768
    n = math.ceil(len(x) / SR * FPS)
    hop = SR / FPS
    db = np.array([10 * np.log10(np.mean(x[int(k * hop):int((k + 1) * hop)] ** 2) + 1e-10) for k in range(n)])
    opening = np.clip((db - db.max() + 35) / 30, 0, 1) * 0.3
    out = np.zeros((n, 20, 2), np.float32)
    out[:, [7, 8, 9, 10, 11, 17, 18, 19], 1] = opening[:, None]
    out[:, [1, 2, 3, 4, 5, 13, 14, 15], 1] = -0.12 * opening[:, None]
    return out


def fps_at(avatar: Avatar, width: int, height: int, pcm: np.ndarray, seconds: float = 3.0) -> dict:
    synth = FaceSynth(avatar, RendererSettings(width=width, height=height))
    timeline, life = Timeline(), IdleLife(seed=0)
    t0 = time.monotonic_ns()
    timeline.add("u", rms_mouths(pcm), np.zeros((20, 2)), FPS, t0, SR, len(pcm))
    times, cpu = [], []
    k = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t_ns = t0 + int(k / FPS * 1e9)  # the frames of the utterance, rendered as fast as possible
        a, c = time.perf_counter(), time.thread_time()
        mouth = timeline.mouth_at(t_ns)
        state = life.step(t_ns / 1e9, speaking=mouth.speaking)
        synth.render(mouth.offset, state.blink, state.gaze, state.head)
        times.append(time.perf_counter() - a)
        cpu.append(time.thread_time() - c)
        k += 1
    ms = np.array(times) * 1000
    cpu_ms = float(np.mean(cpu) * 1000)  # CPU time: what the frame costs when the core is not shared
    log(f"{width}x{height}: {len(ms) / ms.sum() * 1000:.1f} fps, mean {ms.mean():.1f} ms, p95 "
        f"{np.percentile(ms, 95):.1f} ms wall; {cpu_ms:.1f} ms CPU per frame")
    return {"fps": round(len(ms) / ms.sum() * 1000, 1), "p95_ms": round(float(np.percentile(ms, 95)), 2),
            "cpu_ms": round(cpu_ms, 2)}


def first_frame_ms(avatar: Avatar, pcm: np.ndarray, ahead_ms: float) -> float:
    """From ``play_at`` to the first frame showing a moving mouth, with the utterance announced
    ``ahead_ms`` before it plays (0: the worst case, no preparation time). Includes the driver."""
    synth = FaceSynth(avatar, RendererSettings(width=1280, height=720))
    timeline, life = Timeline(), IdleLife(seed=0)
    # The idle renderer is running at 30 fps when the utterance arrives.
    next_tick = time.monotonic_ns()
    announced = next_tick + int(0.05e9)
    play_at = announced + int(ahead_ms * 1e6)
    added = False
    while True:
        now = time.monotonic_ns()
        if not added and now >= announced:
            timeline.add("u", rms_mouths(pcm), np.zeros((20, 2)), FPS, play_at, SR, len(pcm))
            added = True
        if now < next_tick:
            time.sleep((next_tick - now) / 1e9)
            continue
        mouth = timeline.mouth_at(next_tick)
        state = life.step(next_tick / 1e9)
        synth.render(mouth.offset, state.blink, state.gaze, state.head)
        ready = time.monotonic_ns()
        if mouth.offset is not None and np.abs(mouth.offset).max() > 1e-3:
            return (ready - play_at) / 1e6
        next_tick += int(1e9 / FPS)
        if next_tick - play_at > 2e9:
            return float("nan")


def portrait_quality(smoke: bool = False) -> dict:
    """Worst-portrait quality keys and the per-portrait table (see the module docstring)."""
    from services.renderer.avatar import PORTRAITS
    from bench.lib.renderer_quality import FrameMeasure, aligned_phonemes, measure_portrait, script_phonemes

    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "speech" / "librivox"
    alignments = sorted(folder.glob("*.phone.json"))
    # The longest sentence: rounded (to, do), spread (be), closed (m, b, p) and open vowels.
    runs = [(a.stem.split("-")[-1], aligned_phonemes(a)) for a in alignments[:1]] or [("script", script_phonemes())]
    if smoke:  # the test suite's run: one portrait, the first second of speech
        runs = [(name, [p for p in ph if p.start_s < 1.0]) for name, ph in runs]
    # The acceptance three, then a real open mouth showing teeth (reported, not in the headline:
    # dlib reads its closed lips 0.005-0.08 apart from one frame to the next, see docs/renderer.md).
    portraits = {"closed": PORTRAITS / "grid_lrwp9a.png", "smile": PORTRAITS / "grid_bbaf2n_smile.png",
                 "apart": PORTRAITS / "grid_lbax4n.png", "real teeth": PORTRAITS / "grid_swiz3n_teeth.png"}
    measure = FrameMeasure()
    table = []
    for kind, path in list(portraits.items())[:1] if smoke else portraits.items():
        avatar = Avatar.build(path, None)
        for speech_name, phonemes in runs:
            r = measure_portrait(avatar, phonemes, f"{kind}:{path.stem}", measure=measure)
            row = {**r.summary(), "speech": speech_name}
            table.append(row)
            log(json.dumps(row))
    plain = [r for r in table if not r["portrait"].startswith("real teeth")]
    return {
        "lip_closure_gap_iod_p95": max(r["lip_closure_gap_iod_p95"] for r in plain),
        "commanded_vs_drawn_corr": min(r["commanded_vs_drawn_corr"] for r in plain),
        "round_spread_width_ratio": max(r["round_spread_width_ratio"] for r in plain),
        "identity_distance_max": max(r["identity_distance_max"] for r in plain),
        "background_change_mean": max(r["background_change_mean"] for r in plain),
        "quality_speech": "librivox alignments" if alignments else "built-in phoneme script",
        "quality": table,
    }


def main() -> None:
    smoke = "--smoke" in sys.argv  # the test suite's run: every stage, a fraction of a second each
    cv2.setNumThreads(1)
    log("building avatar (cached landmarks are not used: timing includes dlib)")
    a = time.perf_counter()
    avatar = Avatar.build(None, None)
    build_ms = (time.perf_counter() - a) * 1000
    pcm = speech()[: 2 * SR] if smoke else speech()
    log(f"speech: {len(pcm) / SR:.1f} s; avatar built in {build_ms:.0f} ms")
    r720 = fps_at(avatar, 1280, 720, pcm, 0.3 if smoke else 3.0)
    r1080 = fps_at(avatar, 1920, 1080, pcm, 0.3 if smoke else 3.0)
    first_now = first_frame_ms(avatar, pcm, 0.0)
    first_ahead = first_frame_ms(avatar, pcm, 300.0)
    log(f"engine first moving frame: {first_now:.0f} ms after play_at when announced at play_at, "
        f"{first_ahead:.0f} ms when announced 300 ms ahead (negative: lips lead the sound)")
    quality = portrait_quality(smoke)
    from renderer_live import live  # after the engine numbers, which need no bus

    lv = live(smoke)
    headline = ("av_offset_ms_p95", "dropped_frames_pct", "first_frame_ms")
    print(json.dumps({
        "fps_720p": r720["fps"], "fps_1080p": r1080["fps"], **{k: lv[k] for k in headline},
        "p95_ms_720p": r720["p95_ms"], "p95_ms_1080p": r1080["p95_ms"],
        "cpu_ms_per_frame_720p": r720["cpu_ms"], "cpu_ms_per_frame_1080p": r1080["cpu_ms"],
        "load_average_1min": round(os.getloadavg()[0], 2), "cores": os.cpu_count(),
        "engine_first_frame_ms_announced_at_play_at": round(first_now, 1),
        "engine_first_frame_ms_announced_300ms_ahead": round(first_ahead, 1),
        "avatar_build_ms": round(build_ms), "threads": 1,
        **quality,
        **{k: v for k, v in lv.items() if k not in headline},
    }))


if __name__ == "__main__":
    main()
