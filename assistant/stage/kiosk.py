"""The whole kiosk on simulated devices, started for a scene: the demo, the end-to-end tests, the bench.

``Kiosk`` writes a configuration that puts every device on its twin (simulated camera with a walk
file, microphone twin with a cue folder, the speaker's WAV twin, the renderer recording or
headless), optionally starts a real dovecot and SMTP server on loopback, enrols the visitor from a
photo, runs ``assistant up`` and watches the bus until every service is ready.
"""

from __future__ import annotations

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
from typing import TYPE_CHECKING, Sequence

from .visitor import ScriptedVisitor
from .walk import EMPTY, write_walk
from .watch import KioskWatch

if TYPE_CHECKING:
    from assistant.bus import BusClient

    from .mailservers import Dovecot, SmtpSink

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("camera", "hearing", "voice", "renderer", "email", "brain")


def missing_prerequisites(mail: bool = True) -> list[str]:
    """What is missing to run the kiosk on its twins, each with the fix."""
    from hardware.camera_sim import default_faces_dir

    from .mailservers import dovecot_available

    problems = []
    if shutil.which("espeak-ng") is None or not Path("/usr/share/mbrola/us2").exists():
        problems.append("espeak-ng with the MBROLA voice us2: apt-get install espeak-ng mbrola mbrola-us2 (make setup does)")
    if mail and not dovecot_available():
        problems.append("dovecot, run as root: apt-get install dovecot-imapd (make setup does)")
    if default_faces_dir() is None:
        problems.append("the GRID clips in ../shared/data/talking/grid (real faces for the simulated camera)")
    return problems


class Kiosk:
    """Every service on simulated devices under ``assistant up``; use as a context manager."""

    def __init__(self, work: Path | None = None, *, out: Path | None = None, record: bool = False, mail: bool = True,
                 enrol: str = "sam", services: tuple[str, ...] = SERVICES, extra_config: str = "", fps: float = 25.0,
                 camera_config: str = "") -> None:
        self.work = Path(work) if work else Path(tempfile.mkdtemp(prefix="assistant-kiosk-"))
        self._own_work = work is None
        self.out = Path(out) if out else self.work
        self.record, self.mail, self.enrol_as, self.services = record, mail, enrol, tuple(services)
        self.extra_config, self.fps = extra_config, fps
        self.camera_config = camera_config
        """Extra ``[camera]`` keys (TOML lines), e.g. ``sim_cast_file`` for several talking people."""
        self.video = self.out / "demo.mp4"
        self.walk_file = self.work / "walk.json"
        self.runtime = self.work / "run"
        self.config = self.work / "assistant.toml"
        self.log_path = self.out / "services.log"
        self.visitor = ScriptedVisitor(self.work / "cues", self.work / "voice")
        self.dovecot: Dovecot | None = None
        self.smtp: SmtpSink | None = None
        self.up: subprocess.Popen | None = None
        self.client: BusClient | None = None
        self.watch: KioskWatch | None = None

    # --- configuration ------------------------------------------------------------------------
    def config_text(self) -> str:
        w = self.work
        mail = ""
        if self.dovecot is not None and self.smtp is not None:
            from .mailservers import PASSWORD

            (w / "imap-password").write_text(PASSWORD + "\n")
            mail = f"""
[email]
enabled = true
username = "kiosk"
password_file = "{w / 'imap-password'}"
imap_host = "127.0.0.1"
imap_port = {self.dovecot.port}
imap_tls = "none"
smtp_host = "127.0.0.1"
smtp_port = {self.smtp.port}
smtp_tls = "none"
from_address = "kiosk@example.com"
allowed_senders = ["@example.com"]
store_path = "{w / 'email.sqlite'}"
reconnect_backoff_s = [0.2, 0.5, 1.0]
send_backoff_s = [0.5, 1.0, 2.0]
"""
        return f"""
[supervisor]
services = {json.dumps(list(self.services))}
stop_timeout_s = 10.0

[voice]
# The product's chain: Google cannot be reached from the demo's machine, so Piper speaks.
engines = ["gtts", "piper", "espeak-ng"]
[voice.cache]
directory = "{w / 'voice-cache'}"
[voice.speaker]
kind = "wav"
wav_path = "{w / 'speaker.wav'}"

[renderer]
screen = "{'record' if self.record else 'null'}"
record_path = "{self.video}"
width = 1280
height = 720
fps = {self.fps}
cache_dir = "{w / 'avatars'}"

[hearing]
mic_device = "sim"
mic_sim_speaker = true
mic_sim_cue_dir = "{w / 'cues'}"

[camera]
# 15 fps: rendering the simulated room costs CPU a real camera does not (~0.6 core at 30 fps).
fps = 15.0
device = "sim"
gallery_dir = "{w / 'faces'}"
sim_walk_file = "{self.walk_file}"
{self.camera_config}
{mail}
[brain]
store_path = "{w / 'brain.sqlite'}"
fallback_contact = "reception"

[brain.address_book]
reception = "reception@example.com"
{self.extra_config}
"""

    def enrol(self, name: str) -> None:
        """Enrol ``name`` from a photo: a frame of the GRID clip the simulated camera cuts the visitor from."""
        import cv2

        from hardware.camera_sim import ENROL_FRAMES, clip_frames, default_faces_dir

        faces = default_faces_dir()
        assert faces is not None, "no GRID clips"
        photo = self.work / f"{name}.png"
        cv2.imwrite(str(photo), clip_frames(sorted(faces.glob("*.mpg"))[0], range(ENROL_FRAMES.start, ENROL_FRAMES.start + 1))[0])
        done = subprocess.run([sys.executable, "-m", "assistant", "--config", str(self.config), "enroll", name, str(photo)],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"enrolling {name} failed: {done.stderr.strip()[-500:]}")
        log.info("%s enrolled from a photo", name)

    # --- life cycle -----------------------------------------------------------------------------
    def start(self, lines: Sequence[str] = (), ready_timeout_s: float = 120.0) -> KioskWatch:
        from assistant.bus import BusClient
        from assistant.config import BusSettings

        self.out.mkdir(parents=True, exist_ok=True)
        if self.mail:
            from .mailservers import Dovecot, SmtpSink

            self.dovecot, self.smtp = Dovecot().start(), SmtpSink().start()
        self.config.write_text(self.config_text())
        write_walk(self.walk_file, EMPTY)
        self.visitor.prepare(list(lines))
        if self.enrol_as:
            self.enrol(self.enrol_as)
        # The stage plays the visitor on the bus (what camera and hearing would publish): in this
        # kiosk's own runtime directory, identities without a rule ("stage") may publish every type.
        env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(self.runtime), "PYTHONUNBUFFERED": "1",
               "ASSISTANT_BUS__GUEST_TYPES": '["*"]'}
        env.pop("NOTIFY_SOCKET", None)
        with open(self.log_path, "w") as services_log:
            self.up = subprocess.Popen([sys.executable, "-m", "assistant", "--config", str(self.config), "up"], cwd=REPO, env=env,
                                       stdout=services_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not (self.runtime / "bus-sub.sock").exists():
            if time.monotonic() > deadline or self.up.poll() is not None:
                raise RuntimeError(f"the bus did not start; see {self.log_path}")
            time.sleep(0.05)
        self.client = BusClient(BusSettings(runtime_dir=str(self.runtime)), "stage", [""])
        self.client.wait_live(20)
        w = self.watch = KioskWatch(self.client)
        started = time.monotonic()
        w.wait(lambda: all(w.states.get(s) == "ready" for s in self.services), ready_timeout_s,
               lambda: "every service to be ready (" + ", ".join(f"{s}: {w.states.get(s, 'not started')}" for s in self.services) + ")")
        log.info("kiosk ready in %.0f s", time.monotonic() - started)
        w.t0_ns = time.monotonic_ns()
        return w

    def stop(self) -> None:
        """SIGTERM the supervisor (it stops the services, the renderer finishes its MP4), still watching the bus."""
        if self.up is not None and self.up.poll() is None:
            # The broker stops last, on purpose: our watching client losing it then is no fault to report.
            logging.getLogger("assistant.bus.client").setLevel(logging.ERROR)
            self.up.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 30
            while self.up.poll() is None and time.monotonic() < deadline:
                if self.watch is not None:
                    self.watch.pump(50)
                else:
                    time.sleep(0.05)
            if self.up.poll() is None:
                log.error("the kiosk did not stop within 30 s; killing it")
                self.up.kill()
                self.up.wait()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.dovecot is not None:
            self.dovecot.close()
        if self.smtp is not None:
            self.smtp.stop()

    def close(self) -> None:
        self.stop()
        if self._own_work:
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self) -> "Kiosk":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def sent_mail(self) -> list[bytes]:
        return self.smtp.received() if self.smtp is not None else []

    def mp4_t0_ns(self) -> int | None:
        """Monotonic time of the recording's first frame, from the renderer's frame numbers on the bus."""
        if self.watch is None or self.watch.first_frame is None:
            return None
        frame, shown_ns = self.watch.first_frame
        return shown_ns - int(frame / self.fps * 1e9)
