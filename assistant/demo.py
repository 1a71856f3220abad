"""``make demo``: the whole kiosk on simulated devices, playing a scripted scene, recorded.

Starts a real dovecot and SMTP server on loopback, enrols the visitor from a photo, then runs
every service under ``assistant up`` with the simulated camera (a walk the scene steers), the
microphone twin (the visitor's lines synthesised with espeak-ng ``mb-us2`` and spoken into it on
cue), the speaker's WAV twin and the renderer recording to MP4. ``assistant.stage.director``
plays the scene; afterwards ``<out>`` holds:

- ``demo.mp4``: the face with the assistant's voice and the visitor's voice mixed in,
- ``transcript.txt``: who said and did what when; ``latency.txt``: per-turn latencies,
- ``bus.log``: every bus message; ``services.log``: the services' logs; ``summary.json``.

Exit code 0 only when the scene happened: recognised, both questions answered, the mail read out.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("assistant.demo")

SERVICES = ["camera", "hearing", "voice", "renderer", "email", "brain"]
REPO = Path(__file__).resolve().parents[1]


def config_text(work: Path, out: Path, imap_port: int, smtp_port: int, *, record: bool = True) -> str:
    """The kiosk's configuration for the simulated run (every path inside ``work`` or ``out``)."""
    (work / "imap-password").write_text(__import__("assistant.stage.mailservers", fromlist=["PASSWORD"]).PASSWORD + "\n")
    screen = '"record"' if record else '"null"'
    return f"""
[supervisor]
services = {json.dumps(SERVICES)}
stop_timeout_s = 10.0

[voice]
engines = ["espeak-ng"]
[voice.cache]
directory = "{work / 'voice-cache'}"
[voice.speaker]
kind = "wav"
wav_path = "{work / 'speaker.wav'}"

[renderer]
screen = {screen}
record_path = "{out / 'demo.mp4'}"
width = 640
height = 480
fps = 25.0
cache_dir = "{work / 'avatars'}"

[hearing]
mic_device = "sim"
mic_sim_speaker = true
mic_sim_cue_dir = "{work / 'cues'}"

[camera]
device = "sim"
gallery_dir = "{work / 'faces'}"
sim_walk_file = "{work / 'walk.json'}"

[email]
enabled = true
username = "kiosk"
password_file = "{work / 'imap-password'}"
imap_host = "127.0.0.1"
imap_port = {imap_port}
imap_tls = "none"
smtp_host = "127.0.0.1"
smtp_port = {smtp_port}
smtp_tls = "none"
from_address = "kiosk@example.com"
allowed_senders = ["@example.com"]
store_path = "{work / 'email.sqlite'}"
reconnect_backoff_s = [0.2, 0.5, 1.0]
send_backoff_s = [0.5, 1.0, 2.0]

[brain]
store_path = "{work / 'brain.sqlite'}"
fallback_contact = "reception"

[brain.address_book]
reception = "reception@example.com"
"""


def check_prerequisites() -> list[str]:
    """What is missing to run the demo, each with the fix."""
    from assistant.stage.mailservers import dovecot_available
    from hardware.camera_sim import default_faces_dir

    problems = []
    if shutil.which("espeak-ng") is None or not Path("/usr/share/mbrola/us2").exists():
        problems.append("espeak-ng with the MBROLA voice us2: apt-get install espeak-ng mbrola mbrola-us2 (make setup does)")
    if not dovecot_available():
        problems.append("dovecot, run as root: apt-get install dovecot-imapd (make setup does)")
    if default_faces_dir() is None:
        problems.append("the GRID clips in ../shared/data/talking/grid (real faces for the simulated camera)")
    return problems


def enrol(config: Path, name: str, clip: Path, work: Path) -> None:
    """Enrol ``name`` from a photo: a frame of the clip the simulated camera cuts the visitor from."""
    import cv2

    from hardware.camera_sim import ENROL_FRAMES, clip_frames

    photo = work / f"{name}.png"
    cv2.imwrite(str(photo), clip_frames(clip, range(ENROL_FRAMES.start, ENROL_FRAMES.start + 1))[0])
    subprocess.run([sys.executable, "-m", "assistant", "--config", str(config), "enroll", name, str(photo)],
                   check=True, cwd=REPO, capture_output=True, text=True, timeout=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="folder for the recording, transcript and logs")
    parser.add_argument("--no-record", action="store_true", help="run the renderer headless (no MP4)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s", stream=sys.stderr)
    problems = check_prerequisites()
    if problems:
        for p in problems:
            print(f"demo: missing {p}", file=sys.stderr)
        return 1
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in ("demo.mp4", "transcript.txt", "latency.txt", "bus.log", "services.log", "summary.json"):
        (out / old).unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="assistant-demo-"))
    started = time.monotonic()
    try:
        return run(out, work, record=not args.no_record, started=started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        print(f"demo: finished in {time.monotonic() - started:.0f} s; files in {out}", file=sys.stderr)


def run(out: Path, work: Path, *, record: bool, started: float) -> int:
    from assistant.bus import BusClient
    from assistant.config import BusSettings
    from assistant.stage.director import Director, Script
    from assistant.stage.mailservers import Dovecot, SmtpSink
    from assistant.stage.report import latencies, latency_report, mix_visitor, transcript
    from assistant.stage.visitor import ScriptedVisitor
    from assistant.stage.walk import EMPTY, write_walk
    from assistant.stage.watch import KioskWatch
    from hardware.camera_sim import default_faces_dir

    script = Script()
    dovecot, smtp = Dovecot().start(), SmtpSink().start()
    up = None
    client = None
    try:
        runtime = work / "run"
        config = work / "assistant.toml"
        config.write_text(config_text(work, out, dovecot.port, smtp.port, record=record))
        write_walk(work / "walk.json", EMPTY)
        visitor = ScriptedVisitor(work / "cues", work / "voice")
        visitor.prepare(script.lines())
        faces = default_faces_dir()
        assert faces is not None
        enrol(config, script.name, sorted(faces.glob("*.mpg"))[0], work)
        log.info("visitor enrolled as %s from a photo; starting the kiosk", script.name)
        env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(runtime), "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        with open(out / "services.log", "w") as services_log:
            up = subprocess.Popen([sys.executable, "-m", "assistant", "--config", str(config), "up"], cwd=REPO, env=env,
                                  stdout=services_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not (runtime / "bus-sub.sock").exists():
            if time.monotonic() > deadline or up.poll() is not None:
                raise RuntimeError(f"the bus did not start; see {out / 'services.log'}")
            time.sleep(0.05)
        client = BusClient(BusSettings(runtime_dir=str(runtime)), "demo", [""])
        client.wait_live(20)
        watch = KioskWatch(client)
        watch.wait(lambda: all(watch.states.get(s) == "ready" for s in SERVICES), 90,
                   "every service to be ready (" + ", ".join(f"{s}: {watch.states.get(s, 'not started')}" for s in SERVICES) + ")")
        log.info("kiosk ready after %.0f s; the scene starts", time.monotonic() - started)
        watch.t0_ns = time.monotonic_ns()
        director = Director(watch, visitor, str(work / "walk.json"), dovecot.deliver, script)
        director.run()
        watch.idle(1.0)
    finally:
        if up is not None and up.poll() is None:
            up.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while up.poll() is None and time.monotonic() < deadline:
                if client is not None:
                    watch.pump(50)
                else:
                    time.sleep(0.05)
            if up.poll() is None:
                up.kill()
                up.wait()
        if client is not None:
            client.close()
        dovecot.close()
        smtp.stop()

    mails = smtp.received()
    summary = {
        "ok": director.ok, "steps": director.results, "seconds": round(time.monotonic() - started, 1),
        "transcripts": [m.text for _, m in watch.transcripts], "replies": [r.text for _, r in watch.replies],
        "acked": watch.acks, "emails_sent": [m.decode(errors="replace") for m in mails],
        "latency": latencies(watch), "barge_ins": watch.barge_ins, "counters": watch.counters,
    }
    (out / "bus.log").write_text("\n".join(watch.bus_log) + "\n")
    (out / "transcript.txt").write_text(transcript(watch, visitor.spoken))
    (out / "latency.txt").write_text(latency_report(watch))
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
    video = out / "demo.mp4"
    if record and video.exists() and watch.first_frame is not None:
        frame, shown_ns = watch.first_frame
        t0 = shown_ns - int(frame / 25.0 * 1e9)
        mix_visitor(video, visitor.spoken, t0)
    print((out / "transcript.txt").read_text(), file=sys.stderr)
    print((out / "latency.txt").read_text(), file=sys.stderr)
    for name, outcome in director.results.items():
        print(f"demo: {name:<15} {'ok' if outcome is True else outcome}", file=sys.stderr)
    print(f"demo: {'the scene happened' if director.ok else 'the scene did NOT happen'}; "
          f"recording {video if video.exists() else '(none)'}, transcript {out / 'transcript.txt'}, bus log {out / 'bus.log'}")
    return 0 if director.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
