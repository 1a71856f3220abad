"""``make demo``: the whole kiosk on simulated devices, playing a scripted scene, recorded.

Starts a real dovecot and SMTP server on loopback, enrols the visitor from a photo, then runs
every service under ``assistant up`` with the simulated camera (a walk the scene steers), the
microphone twin (the visitor's lines synthesised with espeak-ng ``mb-us2`` and spoken into it on
cue), the speaker's WAV twin and the renderer recording to MP4 (``assistant.stage.kiosk``).
The assistant's voice is the product's chain, gTTS -> Piper -> espeak-ng: with Google out of
reach it speaks with Piper's natural offline voice, and the face follows Piper's phoneme timings.
``assistant.stage.director`` plays the scene; afterwards ``--out`` holds:

- ``demo.mp4``: the face with the assistant's (Piper) voice, and the visitor's voice mixed in,
- ``transcript.txt``: who said and did what when; ``latency.txt``: per-turn latencies,
- ``bus.log``: every bus message; ``services.log``: the services' logs; ``summary.json``.

Exit code 0 only when the scene happened: recognised, both questions answered, the mail read out.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("assistant.demo")

OUTPUTS = ("demo.mp4", "transcript.txt", "latency.txt", "bus.log", "services.log", "summary.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="folder for the recording, transcript and logs")
    parser.add_argument("--no-record", action="store_true", help="run the renderer headless (no MP4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s", stream=sys.stderr)
    from assistant.stage.kiosk import missing_prerequisites

    problems = missing_prerequisites()
    if problems:
        for p in problems:
            print(f"demo: missing {p}", file=sys.stderr)
        return 1
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in OUTPUTS:
        (out / old).unlink(missing_ok=True)
    started = time.monotonic()
    ok = run(out, record=not args.no_record)
    video = out / "demo.mp4"
    print(f"demo: {'the scene happened' if ok else 'the scene did NOT happen'} ({time.monotonic() - started:.0f} s). Files:\n"
          f"  recording  {video if video.exists() else '(none)'}\n  transcript {out / 'transcript.txt'}\n"
          f"  latency    {out / 'latency.txt'}\n  bus log    {out / 'bus.log'}\n  services   {out / 'services.log'}")
    return 0 if ok else 1


def run(out: Path, *, record: bool) -> bool:
    from assistant.stage.director import Director, Script
    from assistant.stage.kiosk import Kiosk
    from assistant.stage.report import latencies, latency_report, mix_visitor, transcript
    from assistant.stage.watch import SceneFailed

    script = Script()
    kiosk = Kiosk(out=out, record=record, enrol=script.name)
    director = None
    started = time.monotonic()
    try:
        kiosk.start(script.lines())
        watch = kiosk.watch
        assert watch is not None and kiosk.dovecot is not None  # start() made both (the demo has mail)
        log.info("the scene starts")
        director = Director(watch, kiosk.visitor, str(kiosk.walk_file), kiosk.dovecot.deliver, script)
        director.run()
        watch.idle(1.0)
    except (SceneFailed, RuntimeError) as exc:
        log.error("%s", exc)
    finally:
        kiosk.stop()
    watch = kiosk.watch
    try:
        if watch is None:
            return False
        summary = {
            "ok": bool(director and director.ok), "steps": director.results if director else {},
            "seconds": round(time.monotonic() - started, 1),
            "heard": [m.text for _, m in watch.transcripts], "replies": [[r.skill, r.text] for _, r in watch.replies],
            "mail_acked": watch.acks, "emails_sent": [m.decode(errors="replace") for m in kiosk.sent_mail()],
            "stops": watch.stops, "latency": latencies(watch), "counters": watch.counters,
            # Which voice visitors heard: sentences per engine (Piper when Google is out of reach).
            "voice_engines": {k[len("spoke_"):]: v for k, v in watch.counters.get("voice", {}).items()
                              if k.startswith("spoke_")},
        }
        (out / "bus.log").write_text("\n".join(watch.bus_log) + "\n")
        (out / "transcript.txt").write_text(transcript(watch, kiosk.visitor.spoken))
        (out / "latency.txt").write_text(latency_report(watch))
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        t0 = kiosk.mp4_t0_ns()
        if record and kiosk.video.exists() and t0 is not None:
            mix_visitor(kiosk.video, kiosk.visitor.spoken, t0)
        print((out / "transcript.txt").read_text() + "\n" + (out / "latency.txt").read_text(), file=sys.stderr)
        print(f"demo: the assistant spoke with {summary['voice_engines'] or 'no engine'} (sentences per engine)",
              file=sys.stderr)
        for name, outcome in (director.results if director else {}).items():
            print(f"demo: {name:<15} {'ok' if outcome is True else outcome}", file=sys.stderr)
        return bool(director and director.ok)
    finally:
        kiosk.close()


if __name__ == "__main__":
    raise SystemExit(main())
