"""Hearing benchmark: real speech streamed in real time through the simulated microphone into the
hearing pipeline (AEC3, webrtcvad endpointing, pocketsphinx), pinned to one CPU core.

Prints progress on stderr and one JSON object as the last stdout line:
final_after_speech_end_ms_p50 (final transcript after the end of speech), rtf (STT time over
speech time), wer_librivox_pocketsphinx, wer_mbrola (mb-us2 sentences), barge_in_ms_p50 (visitor
onset to barge-in detection while a reply plays). Run from the repository root:
``python bench/hearing.py``. Needs ../shared/data and espeak-ng with mbrola-us1/us2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(REPO)

from hardware.microphone import RATE, FileMicrophone, load_audio  # noqa: E402
from services.hearing.echo import PlaybackReference  # noqa: E402
from services.hearing.pipeline import Final, HearingPipeline, SpeechStarted  # noqa: E402
from services.hearing.sentences import MBROLA_SENTENCES  # noqa: E402
from services.hearing.stt.pocketsphinx_engine import PocketSphinxEngine  # noqa: E402
from services.hearing.wer import wer  # noqa: E402

REPLY = "good afternoon and welcome. i am the assistant of this building. i can tell you where to find people, and i can send them a message for you."
VISITOR = "hello where is the meeting room please"


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def synth(text: str, path: Path, voice: str = "mb-us2") -> np.ndarray:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    return load_audio(path)


def stream(engine, clips: list[np.ndarray], tmp: Path, name: str, gap_s: float = 1.0):
    """Play clips (with gaps) through the simulated microphone in real time; returns per-clip text and latencies."""
    import soundfile as sf

    gap = np.zeros(int(gap_s * RATE), np.int16)
    audio = np.concatenate([x for c in clips for x in (c, gap)] + [gap])
    bounds, pos = [], 0
    for c in clips:
        bounds.append(pos + len(c) + len(gap) // 2)
        pos += len(c) + len(gap)
    sf.write(str(tmp / f"{name}.wav"), audio, RATE, subtype="PCM_16")
    finals: list[tuple[int, Final]] = []
    done = threading.Event()
    pipeline = HearingPipeline(engine, lambda ev: isinstance(ev, Final) and finals.append((time.monotonic_ns(), ev)))
    mic = FileMicrophone(tmp / f"{name}.wav", lead_s=0.5)
    start = time.monotonic_ns() + 200_000_000
    mic.start_at_ns = start
    pipeline.start()
    mic.start(pipeline.push)
    done.wait((0.5 + len(audio) / RATE) + 1.0)
    mic.stop()
    pipeline.stop()
    texts = [""] * len(clips)
    for _, f in finals:
        t = (f.speech_start_ns - start) / 1e9 - 0.5
        k = next((i for i, b in enumerate(bounds) if t * RATE < b), len(clips) - 1)
        texts[k] = (texts[k] + " " + f.result.text).strip()
    latencies = [(t - f.speech_end_ns) / 1e6 for t, f in finals]
    return texts, latencies, pipeline


def barge_in(engine, reply: np.ndarray, visitor: np.ndarray, tmp: Path, after_s: float) -> tuple[float | None, str]:
    """A reply plays; the visitor starts ``after_s`` into it. Returns (detection ms after onset, transcript)."""
    import soundfile as sf

    lead = 1.0
    sf.write(str(tmp / "visitor.wav"), visitor, RATE, subtype="PCM_16")
    mic = FileMicrophone(tmp / "visitor.wav", lead_s=lead, speaker_leak_db=-15.0)
    ref = PlaybackReference()
    start = time.monotonic_ns() + 200_000_000
    mic.start_at_ns = start
    onset = start + int((lead + np.flatnonzero(np.abs(visitor.astype(np.int32)) > 300)[0] / RATE) * 1e9)
    play_at = onset - int(after_s * 1e9)
    ref.add("reply", reply.tobytes(), RATE, play_at)
    mic.speaker_play(reply, play_at)
    got: dict = {}
    done = threading.Event()

    def on_event(ev) -> None:
        if isinstance(ev, SpeechStarted) and "detect" not in got:
            got["detect"] = time.monotonic_ns()
            now = time.monotonic_ns()  # the brain's voice.stop: sound stops, the reference too
            ref.cut(now)
            mic.speaker_stop(now)
        elif isinstance(ev, Final):
            got["text"] = ev.result.text
            done.set()

    pipeline = HearingPipeline(engine, on_event, reference=ref)
    pipeline.start()
    mic.start(pipeline.push)
    done.wait((onset - time.monotonic_ns()) / 1e9 + len(visitor) / RATE + 3.0)
    mic.stop()
    pipeline.stop()
    det = (got["detect"] - onset) / 1e6 if "detect" in got else None
    return det, got.get("text", "")


def main() -> int:
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})  # "RTF on one core"
    shared = Path(os.environ.get("ASSISTANT_SHARED_DATA", REPO.parent / "shared" / "data"))
    engine = PocketSphinxEngine()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clips = sorted((shared / "speech" / "librivox").glob("*.wav"))
        log(f"librivox: {len(clips)} clips in real time")
        lv_text, lv_lat, p1 = stream(engine, [load_audio(c) for c in clips], tmp, "librivox")
        lv_refs = [c.with_suffix(".txt").read_text().strip() for c in clips]
        for r, h in zip(lv_refs, lv_text):
            log(f"  REF {r}\n  HYP {h}")
        log(f"mbrola mb-us2: {len(MBROLA_SENTENCES)} sentences in real time")
        mb_text, mb_lat, p2 = stream(engine, [synth(s, tmp / f"mb{i}.wav") for i, s in enumerate(MBROLA_SENTENCES)], tmp, "mbrola")
        for r, h in zip(MBROLA_SENTENCES, mb_text):
            log(f"  REF {r}\n  HYP {h}")
        reply = synth(REPLY, tmp / "reply.wav", voice="mb-us1")
        visitor = synth(VISITOR, tmp / "visitor_src.wav")
        barge = []
        for after in (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0):
            det, text = barge_in(engine, reply, visitor, tmp, after)
            log(f"barge-in {after:.1f} s into the reply: detected {det} ms after onset, heard {text!r}")
            barge.append(det if det is not None else float("inf"))
    lat = lv_lat + mb_lat
    stt_s = p1.stats.stt_s + p2.stats.stt_s
    speech_s = p1.stats.utterance_s + p2.stats.utterance_s
    result = {
        "final_after_speech_end_ms_p50": round(float(np.median(lat)), 1),
        "final_after_speech_end_ms_p90": round(float(np.percentile(lat, 90)), 1),
        "rtf": round(stt_s / speech_s, 3),
        "pipeline_load": round((p1.stats.process_s + p2.stats.process_s) / (p1.stats.audio_s + p2.stats.audio_s), 3),
        "wer_librivox_pocketsphinx": round(wer(lv_refs, lv_text), 3),
        "wer_mbrola": round(wer(MBROLA_SENTENCES, mb_text), 3),
        "barge_in_ms_p50": round(float(np.median(barge)), 1),
        "barge_in_ms_max": round(float(np.max(barge)), 1),
        "barge_in_trials": len(barge),
        "cpu_cores": 1,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
