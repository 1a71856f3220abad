"""Live renderer measures over real processes: A/V offset, dropped frames, first frame after play_at.

Used by ``bench/renderer.py`` (run that). A broker and the renderer service (null screen, so
nothing but the renderer's own work is timed) run as child processes; the voice is the
test-side stand-in ``tests/voice_twin.py``, which publishes ``voice.utterance`` ahead of
``play_at`` and ``voice.playback`` like the voice service, with a speaker twin that plays
sample ``i`` at exactly ``play_at + i / rate``. Every ``face.landmarks`` says which sound time
its mouth shows (``audio_s``) and when it was shown (``shown_ns``); the offset is shown time
minus the twin's time of that sound (positive: mouth late; the renderer leads by ``lead_s``
on purpose). Frame numbers count slots, so a missing number is a dropped frame.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.messages import FaceLandmarks, RendererStats, SystemState  # noqa: E402
from tests.procs import Procs, wait_for  # noqa: E402
from tests.voice_twin import VoiceTwin, espeak_speech, librivox_speech  # noqa: E402

FPS = 30.0
SHARED = REPO.parent / "shared" / "data"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _utterances(tmp: Path) -> list[tuple[str, np.ndarray, int, list, str]]:
    out = []
    got = espeak_speech(tmp, "Good afternoon. I am Ada, the assistant at this desk. How can I help you today?")
    if got is not None:
        out.append(("espeak", got[0], got[1], [], ""))
    if (SHARED / "speech" / "librivox").is_dir():
        pcm, sr, phonemes = librivox_speech(SHARED, 3)
        out.append(("librivox", pcm, sr, phonemes, "arpabet"))
    if not out:
        raise SystemExit("no speech to play: install espeak-ng or provide ../shared/data")
    return out


def session(tmp: Path, width: int, height: int, plan: list[tuple[tuple, float]], fps: float = FPS) -> dict:
    """Run the renderer at one size through ``plan`` [(utterance, announce-ahead seconds)]."""
    procs = Procs(tmp / f"run{width}-{fps:g}")
    try:
        procs.broker()
        watcher = procs.client([FaceLandmarks.TYPE, RendererStats.TYPE, SystemState.TYPE])
        env = {"ASSISTANT_RENDERER__SCREEN": "null", "ASSISTANT_RENDERER__WIDTH": str(width),
               "ASSISTANT_RENDERER__HEIGHT": str(height), "ASSISTANT_RENDERER__FPS": str(fps),
               "ASSISTANT_RENDERER__CACHE_DIR": str(tmp / "avatars"), "ASSISTANT_RENDERER__SEED": "5"}
        proc = procs.start("services.renderer", env=env)
        wait_for(watcher, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "renderer"
                 and rx.msg.state in ("ready", "failed"), 60)
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        twin = VoiceTwin(procs.client(source="voice"))
        marks: list[FaceLandmarks] = []
        stats: list[RendererStats] = []

        def collect(until_ns: int) -> None:
            while time.monotonic_ns() < until_ns:
                rx = watcher.recv(timeout_ms=20)
                if rx is None:
                    continue
                if isinstance(rx.msg, FaceLandmarks):
                    marks.append(rx.msg)
                elif isinstance(rx.msg, RendererStats):
                    stats.append(rx.msg)

        collect(time.monotonic_ns() + int(1.0e9))  # idle: the renderer settles
        runs = []
        for k, ((name, pcm, sr, phonemes, alphabet), ahead) in enumerate(plan):
            uid = f"{name}-{k}"
            play_at = twin.play(uid, pcm, sr, ahead_s=ahead, phonemes=phonemes, alphabet=alphabet)
            end = play_at + int(len(pcm) / sr * 1e9)
            collect(end + int(0.6e9))
            twin.wait()
            runs.append((uid, play_at, end, len(pcm) / sr, ahead, sound_onset_s(pcm, sr)))
        proc.terminate()
        proc.communicate(timeout=30)
    finally:
        procs.cleanup()
    return analyse(marks, stats, runs, width, height, fps)


def sound_onset_s(pcm: np.ndarray, sr: int) -> float:
    """Start of the sound: the first 10 ms whose RMS is within 26 dB of the loudest 10 ms."""
    hop = sr // 100
    x = pcm[: len(pcm) // hop * hop].astype(np.float32).reshape(-1, hop)
    rms = np.sqrt((x ** 2).mean(axis=1))
    return float(np.argmax(rms > 0.05 * rms.max()) * hop / sr)


def analyse(marks, stats, runs, width, height, fps) -> dict:
    offsets, firsts, firsts_now, shows, slots, shown = [], [], [], [], 0, 0
    for uid, play_at, end, duration, ahead, onset in runs:
        mine = [m for m in marks if m.utterance_id == uid]
        speech = [m for m in mine if 0.0 <= m.audio_s < duration]
        offsets += [(m.shown_ns - (play_at + m.audio_s * 1e9)) / 1e6 for m in speech]
        # First moving frame: the first whose mouth visibly leaves its rest, from the moment
        # the sound starts (play_at plus any leading silence in the audio).
        rest = np.median([m.mouth_open for m in marks if m.shown_ns < play_at - 0.2e9 and not m.utterance_id])
        moving = [m.shown_ns for m in mine if abs(m.mouth_open - rest) > 0.01]
        first = (min(moving) - (play_at + onset * 1e9)) / 1e6 if moving else float("nan")
        (firsts if ahead > 0 else firsts_now).append(first)
        shows.append((min(m.shown_ns for m in mine) - play_at) / 1e6 if mine else float("nan"))
        window = [m.frame for m in marks if play_at - 0.5e9 <= m.shown_ns <= end + 0.5e9]
        if window:
            slots += max(window) - min(window) + 1
            shown += len(window)
        log(f"  {width}x{height}@{fps:g} {uid}: {len(speech)} speech frames, offset median "
            f"{np.median(offsets[-len(speech):]) if speech else float('nan'):.1f} ms, utterance on screen from "
            f"{shows[-1]:.0f} ms, first moving frame {first:.0f} ms after the sound starts ({onset * 1000:.0f} ms after play_at)")
    off = np.array(offsets)
    spans = [(r[1] - 0.5e9, r[2] + 0.5e9) for r in runs]
    seconds = sum((b - a) / 1e9 for a, b in spans)
    return {
        "fps": round(shown / seconds, 2) if seconds else None,
        "av_offset_ms_p95": round(float(np.percentile(np.abs(off), 95)), 1) if len(off) else None,
        "av_offset_ms_median": round(float(np.median(off)), 1) if len(off) else None,
        "dropped_frames_pct": round(100 * (slots - shown) / slots, 2) if slots else None,
        "first_frame_ms": round(max(firsts), 1) if firsts else None,
        "first_frame_ms_announced_at_play_at": round(max(firsts_now), 1) if firsts_now else None,
        "utterance_shown_from_ms": round(max(shows), 1) if shows else None,
        "render_ms": stats[-1].render_ms if stats else None,
        "speech_frames": int(len(off)),
    }


def live() -> dict:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        utts = _utterances(tmp)
        plan = [(u, 0.3) for u in utts] + [(utts[0], 0.0)]
        log("live: broker + renderer service + voice stand-in (tests/voice_twin.py), null screen")
        r720 = session(tmp, 1280, 720, plan)
        r1080 = session(tmp, 1920, 1080, [(u, 0.3) for u in utts])
    log(f"live 720p: {r720}")
    log(f"live 1080p: {r1080}")
    return {
        "av_offset_ms_p95": r720["av_offset_ms_p95"],
        "dropped_frames_pct": r720["dropped_frames_pct"],
        "first_frame_ms": r720["first_frame_ms"],
        "first_frame_ms_announced_at_play_at": r720["first_frame_ms_announced_at_play_at"],
        "av_offset_ms_median": r720["av_offset_ms_median"],
        "live_fps_720p": r720["fps"], "live_fps_1080p": r1080["fps"],
        "av_offset_ms_p95_1080p": r1080["av_offset_ms_p95"],
        "dropped_frames_pct_1080p": r1080["dropped_frames_pct"],
        "render_ms_720p": r720["render_ms"], "render_ms_1080p": r1080["render_ms"],
        "voice": "test-side stand-in (tests/voice_twin.py); the voice service has not landed on main",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(live()))
