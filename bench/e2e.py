"""End-to-end turn latency of the whole kiosk on its twins, with the offline engines, on this machine.

Every service runs under ``assistant up`` (camera twin with the visitor standing at the kiosk,
microphone twin, pocketsphinx, the brain, the voice (gTTS -> Piper -> espeak-ng: offline, Piper
speaks), the speaker's WAV twin, the renderer headless). A recognised visitor asks ``--turns``
questions (espeak-ng ``mb-us2`` spoken into the microphone twin), each once the previous reply
has ended. Two measures per turn:

- ``brain.trace``: end of speech (the hearing's VAD edge) -> first sound (``play_at`` of the
  turn's first utterance) -> first mouth frame (``face.landmarks`` shown time);
- ground truth from the twins: the end of the visitor's audio as spoken into the microphone ->
  the first reply sample that left the speaker twin (its WAV and per-block times).

Floors (issue 9): end of speech -> first sound p50 <= 800 ms and p95 <= 1200 ms; mouth within
40 ms of the sound. Progress on stderr; one JSON object as the last stdout line.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(Path(__file__).resolve().parents[1])

from assistant.stage.kiosk import Kiosk, missing_prerequisites  # noqa: E402
from assistant.stage.walk import WALK_IN, write_walk  # noqa: E402
from assistant.stage.watch import SceneFailed  # noqa: E402

QUESTIONS = [
    "what time is it", "where are the toilets", "what are your opening hours", "is there a car park",
    "how do i get to the train station", "is there an elevator", "where can i get a cup of coffee", "who are you",
    "hello there", "where can i park", "what can you do", "thank you",
]


def speaker_first_sound(wav: Path, after_ns: list[int], threshold: int = 300) -> list[int | None]:
    """For each time, when the speaker twin next played a non-silent sample (monotonic ns)."""
    import soundfile as sf

    pcm, rate = sf.read(str(wav), dtype="int16")
    rows = np.load(wav.with_suffix(".times.npy"))
    if len(rows) == 0:
        return [None] * len(after_ns)
    # Time of every block's first sample; a sample's time is its block's plus its offset in it.
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > threshold)
    block = np.searchsorted(rows[:, 0], loud, side="right") - 1
    t_loud = rows[block, 1] + (loud - rows[block, 0]) * 1_000_000_000 // rate
    out = []
    for t in after_ns:
        k = np.searchsorted(t_loud, t)
        out.append(int(t_loud[k]) if k < len(t_loud) else None)
    return out


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=len(QUESTIONS), help="questions to ask (>= 10 for the floors)")
    parser.add_argument("--no-camera", action="store_true", help="leave the camera out (the brain is told someone is there)")
    parser.add_argument("--smoke", action="store_true", help="one turn, for the test suite (exit 1 if it was not measured)")
    args = parser.parse_args()
    if args.smoke:
        args.turns = 1
    logging.basicConfig(level=logging.INFO, format="bench: %(message)s", stream=sys.stderr)
    problems = missing_prerequisites(mail=False)
    if problems:
        print(json.dumps({"skipped" if args.smoke else "error": "missing " + "; ".join(problems)}))
        return 0 if args.smoke else 1
    questions = (QUESTIONS * (args.turns // len(QUESTIONS) + 1))[: args.turns]
    services = tuple(s for s in ("camera", "hearing", "voice", "renderer", "brain") if not (args.no_camera and s == "camera"))
    kiosk = Kiosk(mail=False, services=services, enrol="sam")
    truth_end: list[int] = []
    try:
        w = kiosk.start(questions)
        if args.no_camera:
            from assistant.messages import Person

            kiosk.client.publish(Person(event="engaged", track_id=1, identity="sam"))
        else:
            write_walk(kiosk.walk_file, WALK_IN)
        t = time.monotonic_ns()
        greeting = w.wait(lambda: w.reply_after(t, "greeting"), 40, "the greeting")
        w.wait(lambda: greeting.status, 30, "the greeting to end")
        for i, q in enumerate(questions):
            w.quiet(0.7)
            line = kiosk.visitor.say(q)
            loud = np.flatnonzero(np.abs(line.pcm.astype(np.int32)) > 300)
            truth_end.append(line.start_ns + int(loud[-1]) * 1_000_000_000 // 16_000)
            reply = w.wait(lambda: w.reply_after(line.start_ns), 20, f"a reply to {q!r}")
            w.wait(lambda: reply.status, 60, f"the reply to {q!r} to end")
            heard = next((m.text for _, m in reversed(w.transcripts) if m.speech_end_ns >= line.start_ns), "")
            print(f"bench: turn {i + 1}/{len(questions)}: {q!r} heard {heard!r} -> [{reply.skill}] {reply.text[:60]!r}", file=sys.stderr)
        w.quiet(0.5)
        w.idle(1.0)  # the last trace follows its first mouth frame
    except SceneFailed as exc:
        print(f"bench: {exc}", file=sys.stderr)
    finally:
        kiosk.stop()
    w = kiosk.watch
    try:
        traces = [tr for _, tr in w.traces if tr.speech_end_ns and tr.first_sound_ns] if w else []
        sound = [(tr.first_sound_ns - tr.speech_end_ns) / 1e6 for tr in traces]
        mouth = [(tr.first_mouth_ns - tr.first_sound_ns) / 1e6 for tr in traces if tr.first_mouth_ns]
        transcript = [(tr.transcript_ns - tr.speech_end_ns) / 1e6 for tr in traces if tr.transcript_ns]
        spoken = speaker_first_sound(kiosk.work / "speaker.wav", truth_end) if (kiosk.work / "speaker.wav").exists() else []
        twin = [(s - e) / 1e6 for s, e in zip(spoken, truth_end) if s is not None]
        for tr in traces:
            print("bench: turn ms: transcript %4.0f  reply %4.0f  first sound %4.0f  mouth %+4.0f" % (
                (tr.transcript_ns - tr.speech_end_ns) / 1e6, (tr.reply_ns - tr.speech_end_ns) / 1e6,
                (tr.first_sound_ns - tr.speech_end_ns) / 1e6, (tr.first_mouth_ns - tr.first_sound_ns) / 1e6 if tr.first_mouth_ns else float("nan")),
                file=sys.stderr)
        result = {
            "speech_end_to_first_sound_ms_p50": pct(sound, 50),
            "speech_end_to_first_sound_ms_p95": pct(sound, 95),
            "first_sound_to_first_mouth_ms_p95": pct(mouth, 95),
            "turns": len(sound),
            "first_sound_to_first_mouth_abs_ms_p95": pct([abs(m) for m in mouth], 95),
            "speech_end_to_transcript_ms_p50": pct(transcript, 50),
            "twins_speech_end_to_first_sound_ms_p50": pct(twin, 50),
            "twins_speech_end_to_first_sound_ms_p95": pct(twin, 95),
            "questions": len(questions),
            "camera": not args.no_camera,
        }
        result["floors_met"] = bool(
            result["turns"] >= 10 and sound and result["speech_end_to_first_sound_ms_p50"] <= 800
            and result["speech_end_to_first_sound_ms_p95"] <= 1200 and mouth and result["first_sound_to_first_mouth_abs_ms_p95"] <= 40)
        print(json.dumps(result))
        return 1 if args.smoke and not (sound and mouth) else 0
    finally:
        kiosk.close()


if __name__ == "__main__":
    raise SystemExit(main())
