"""The whole kiosk under ``assistant up`` on its simulated devices, for the fault tests and the soak.

The visitor is played at the bus level (``vision.person`` and ``hearing.transcript`` as camera and
hearing would publish them) so that a conversation can be scripted turn by turn, while the real
camera, hearing, voice, renderer, email, brain and status page run beside it. Mail goes through
a real dovecot and a real SMTP server (``tests/mailservers.py``) when dovecot can run (root).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assistant.bus import BusClient
from assistant.config import BusSettings
from assistant.messages import Done, Heartbeat, Person, Reply, Say, Speech, SystemState, Transcript

from . import mailservers

REPO = Path(__file__).resolve().parents[1]
SERVICES = ["voice", "renderer", "hearing", "camera", "email", "brain", "ops"]

BRAIN_CONFIG = """
[brain]
store_path = "{store}"
greet_wait_s = 0.3
outbox_retry_s = 1.0

[brain.address_book]
bob_smith = "bob@example.com"
"""


class Kiosk:
    """``assistant up`` with every service, its bus, mail servers, and a visitor on the bus."""

    def __init__(self, folder: Path | None = None, *, mail: bool = True, watchdog_s: float = 10.0) -> None:
        self.dir = Path(folder or tempfile.mkdtemp(prefix="kiosk-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runtime = self.dir / "run"
        self.dovecot = self.smtp = None
        self.mail = mail and mailservers.dovecot_available()
        config = self.dir / "assistant.toml"
        config.write_text(BRAIN_CONFIG.format(store=self.dir / "brain.sqlite"))
        self.ops_port = mailservers.free_port()
        # The simulated devices are plugged in while these exist (``unplug`` / ``plug``).
        self.nodes = {name: self.dir / "dev" / name for name in ("video0", "mic", "speaker")}
        self.plug()
        self.cues = self.dir / "mic-cues"  # speech dropped here is heard by the simulated microphone
        # Nobody walks through the simulated camera's view: the visitor is scripted on the bus, and
        # a greeting for someone the camera saw must not talk over a scripted turn.
        (self.dir / "walk.json").write_text("[]")
        self.env = {
            **os.environ, "PYTHONUNBUFFERED": "1",
            "ASSISTANT_BUS__RUNTIME_DIR": str(self.runtime),
            "ASSISTANT_BUS__GUEST_TYPES": '["*"]',  # the scripted visitor publishes what camera and hearing would
            "ASSISTANT_SUPERVISOR__SERVICES": "[" + ", ".join(f'"{s}"' for s in SERVICES) + "]",
            "ASSISTANT_SUPERVISOR__RESTART_BACKOFF_S": "[0.1, 0.5, 1.0]",
            "ASSISTANT_SUPERVISOR__WATCHDOG_S": str(watchdog_s),
            "ASSISTANT_VOICE__ENGINES": '["espeak-ng"]',
            "ASSISTANT_VOICE__SPEAKER__KIND": "wav",
            "ASSISTANT_VOICE__SPEAKER__WAV_PATH": str(self.dir / "speaker.wav"),
            "ASSISTANT_VOICE__CACHE__DIRECTORY": str(self.dir / "voice-cache"),
            "ASSISTANT_RENDERER__SCREEN": '"null"',
            "ASSISTANT_RENDERER__CACHE_DIR": str(self.dir / "avatars"),
            "ASSISTANT_CAMERA__GALLERY_DIR": str(self.dir / "faces"),
            "ASSISTANT_CAMERA__SIM_DEVICE_NODE": str(self.nodes["video0"]),
            "ASSISTANT_CAMERA__SIM_WALK_FILE": str(self.dir / "walk.json"),
            "ASSISTANT_HEARING__MIC_SIM_DEVICE_NODE": str(self.nodes["mic"]),
            "ASSISTANT_HEARING__MIC_SIM_CUE_DIR": str(self.cues),
            "ASSISTANT_HEARING__MIC_RETRY_S": "0.2",
            "ASSISTANT_VOICE__SPEAKER__WAV_DEVICE_NODE": str(self.nodes["speaker"]),
            "ASSISTANT_OPS__PORT": str(self.ops_port),
            # A mail whose ack died with a killed brain comes again after this (60 s in production).
            "ASSISTANT_EMAIL__REDELIVER_AFTER_S": "5.0",
            "ASSISTANT_CONFIG": str(config),
        }
        self.env.pop("NOTIFY_SOCKET", None)
        if self.mail:
            self.dovecot = mailservers.Dovecot().start()
            self.smtp = mailservers.SmtpSink().start()
            self.env.update(mailservers.service_env(self.dovecot, self.dir, smtp_port=self.smtp.port, allowed='["@example.com"]'))
        self.up: subprocess.Popen | None = None
        self.bus: BusClient | None = None
        self.pids: dict[str, int] = {}
        self.ready: set[str] = set()
        self.turns = 0
        self.replies: dict[str, Reply] = {}
        self.restarts: dict[str, int] = {}
        self.counters: dict[str, dict[str, float]] = {}
        self.dones: dict[str, list[Done]] = {}
        self.speaking: dict[str, float] = {}  # say_id -> when asked, until its last voice.done
        self.heard: list[str] = []

    # --- life ---------------------------------------------------------------------------
    def start(self, timeout: float = 90.0) -> "Kiosk":
        self.log = open(self.dir / "up.log", "w")  # noqa: SIM115 - the child's stdout until stop()
        self.up = subprocess.Popen([sys.executable, "-m", "assistant", "up"], cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (self.runtime / "bus-sub.sock").exists():
            assert self.up.poll() is None and time.monotonic() < deadline, "assistant up did not start the bus"
            time.sleep(0.05)
        self.bus = BusClient(BusSettings(runtime_dir=str(self.runtime)), "visitor",
                             [Heartbeat.TYPE, SystemState.TYPE, Reply.TYPE, Done.TYPE, Transcript.TYPE, Say.TYPE])
        self.bus.wait_live(20)
        self.wait(lambda: set(SERVICES) <= self.ready, timeout, "every service ready")
        return self

    def close(self) -> None:
        if self.up is not None and self.up.poll() is None:
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(20)
            except subprocess.TimeoutExpired:
                self.up.kill()
                self.up.wait()
        if self.bus is not None:
            self.bus.close()
        for server in (self.dovecot, self.smtp):
            if server is not None:
                (server.close if hasattr(server, "close") else server.stop)()

    def up_log(self) -> str:
        self.log.flush()
        return (self.dir / "up.log").read_text(errors="replace")

    # --- watching -----------------------------------------------------------------------
    def pump(self, seconds: float = 0.0) -> None:
        """Read the bus for a while, keeping track of services, replies and mail."""
        deadline = time.monotonic() + seconds
        while True:
            rx = self.bus.recv(timeout_ms=20)
            if rx is not None:
                self._note(rx)
            elif time.monotonic() >= deadline:
                return

    def _note(self, rx) -> None:
        msg = rx.msg
        if isinstance(msg, Heartbeat):
            old = self.pids.get(msg.service)
            if old is not None and old != msg.pid:
                self.restarts[msg.service] = self.restarts.get(msg.service, 0) + 1
            self.pids[msg.service] = msg.pid
            self.counters[msg.service] = dict(msg.counters)
            (self.ready.add if msg.state == "ready" else self.ready.discard)(msg.service)
        elif isinstance(msg, SystemState) and msg.state != "ready":
            self.ready.discard(msg.service)
        elif isinstance(msg, Reply):
            self.replies[rx.header.turn] = msg
        elif isinstance(msg, Say):
            self.speaking[msg.say_id] = time.monotonic()
        elif isinstance(msg, Done):
            self.dones.setdefault(rx.header.turn, []).append(msg)
            if msg.last:
                self.speaking.pop(msg.say_id, None)
        elif isinstance(msg, Transcript) and rx.header.source == "hearing":
            self.heard.append(msg.text)

    def wait(self, predicate, timeout: float, what: str) -> float:
        t0 = time.monotonic()
        while not predicate():
            if time.monotonic() - t0 > timeout:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; assistant up said:\n{self.up_log()[-3000:]}")
            self.pump(0.05)
        return time.monotonic() - t0

    def silent(self, for_s: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until the kiosk has said nothing for ``for_s`` (so a visitor is not talked over)."""
        quiet_since = [time.monotonic()]

        def quiet() -> bool:
            # A say whose voice was SIGKILLed never gets its voice.done: forget it after a while.
            for say_id in [k for k, t in self.speaking.items() if time.monotonic() - t > 30]:
                del self.speaking[say_id]
            if self.speaking:
                quiet_since[0] = time.monotonic()
            return time.monotonic() - quiet_since[0] >= for_s
        self.wait(quiet, timeout, "the kiosk to stop speaking")

    def counter(self, service: str, name: str) -> float:
        return self.counters.get(service, {}).get(name, 0)

    # --- the devices --------------------------------------------------------------------
    def unplug(self, *names: str) -> None:
        for name in names or self.nodes:
            self.nodes[name].unlink(missing_ok=True)

    def plug(self, *names: str) -> None:
        for name in names or self.nodes:
            self.nodes[name].parent.mkdir(parents=True, exist_ok=True)
            self.nodes[name].touch()

    def say_into_mic(self, wav: Path) -> None:
        """The visitor speaks into the simulated microphone now."""
        self.cues.mkdir(exist_ok=True)
        tmp = self.cues / f".{wav.name}.tmp"
        tmp.write_bytes(wav.read_bytes())
        tmp.rename(self.cues / f"{time.monotonic_ns()}_{wav.name}")

    # --- the visitor --------------------------------------------------------------------
    def engage(self, track_id: int = 7, identity: str = "alice") -> None:
        self.bus.publish(Person(event="arrived", track_id=track_id))
        self.bus.publish(Person(event="engaged", track_id=track_id, distance_m=0.8))
        self.bus.publish(Person(event="recognised", track_id=track_id, identity=identity))

    def leave(self, track_id: int = 7) -> None:
        self.bus.publish(Person(event="left", track_id=track_id))

    def ask(self, text: str) -> str:
        """The visitor says ``text`` (as hearing would report it); returns the turn id."""
        self.turns += 1
        turn = f"ops-{self.turns}"
        now = time.monotonic_ns()
        self.bus.publish(Speech(event="started", at_ns=now - 1_200_000_000), turn=turn)
        self.bus.publish(Speech(event="ended", at_ns=now - 200_000_000), turn=turn)
        self.bus.publish(Transcript(text=text, confidence=0.9, engine="visitor", speech_start_ns=now - 1_200_000_000, speech_end_ns=now - 200_000_000), turn=turn)
        return turn

    def deliver(self, n: int) -> None:
        self.dovecot.deliver(f"X-Test-Id: {n}\r\nFrom: Carol <carol@example.com>\r\nTo: kiosk@example.com\r\nSubject: note {n}\r\n"
                             f"Message-ID: <ops{n}@example.com>\r\n\r\nNote number {n} for the desk.\r\n".encode())


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
