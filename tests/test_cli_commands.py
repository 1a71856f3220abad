"""Every documented command on real processes: ``assistant run NAME`` for each service in the README
(``--config`` after the subcommand), ``say`` without a speaker, ``up`` serving the status page."""

import re
import signal
import subprocess
import sys
import time
import urllib.request

from assistant.config import Config
from assistant.messages import Heartbeat, SystemState

from .mailservers import free_port
from .procs import REPO, wait_for

#: The services the README documents (`assistant run NAME`).
README_SERVICES = ("bus", "echo", "camera", "hearing", "voice", "renderer", "email", "brain", "ops")


def _cli(procs, *args, timeout=60, env=None):
    return subprocess.run([sys.executable, "-m", "assistant", *args], cwd=REPO, env={**procs.env, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def _config(tmp_path, extra="") -> str:
    path = tmp_path / "kiosk.toml"
    path.write_text(f"""
[renderer]
screen = "null"
[voice]
engines = ["espeak-ng"]
[voice.speaker]
kind = "wav"
wav_path = "{tmp_path / 'voice.wav'}"
[voice.cache]
prewarm = []
[camera]
gallery_dir = "{tmp_path / 'faces'}"
[ops]
port = {free_port()}
{extra}""")
    return str(path)


def test_the_readme_documents_exactly_these_services():
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"assistant run ([a-z]+)", readme))
    assert documented <= set(README_SERVICES), documented
    from assistant.supervisor import SERVICES

    assert set(README_SERVICES) <= set(SERVICES)


def test_assistant_run_starts_every_service_with_config_after_the_subcommand(procs, tmp_path):
    config = _config(tmp_path)
    bus = procs.start("assistant", "run", "bus", "--config", config)
    deadline = time.monotonic() + 15
    while not (procs.runtime_dir / "bus-sub.sock").exists():
        assert bus.poll() is None and time.monotonic() < deadline, bus.communicate()
        time.sleep(0.05)
    watcher = procs.client([SystemState.TYPE, Heartbeat.TYPE])
    children = {name: procs.start("assistant", "run", name, "--config", config) for name in README_SERVICES if name != "bus"}
    ready: set[str] = set()
    deadline = time.monotonic() + 90
    while ready != set(children) and time.monotonic() < deadline:
        rx = watcher.recv(timeout_ms=100)
        if rx is not None and rx.msg.state == "ready" and rx.msg.service in children:
            ready.add(rx.msg.service)
        for name, proc in children.items():
            assert proc.poll() is None, f"assistant run {name} exited: {proc.communicate()}"
    assert ready == set(children), f"not ready: {set(children) - ready}"
    for name, proc in children.items():
        proc.send_signal(signal.SIGTERM)
    for name, proc in children.items():
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, (name, err[-2000:])
        assert "Traceback" not in err, (name, err[-2000:])
    bus.send_signal(signal.SIGTERM)
    assert bus.wait(10) == 0


def test_say_without_a_speaker_exits_1_and_status_shows_the_voice_degraded(procs, tmp_path):
    config = _config(tmp_path, extra="[supervisor]\nservices = [\"voice\"]\n")
    unplugged = tmp_path / "no-such-sound-card"
    procs.broker()
    watcher = procs.client([SystemState.TYPE])
    procs.start("assistant", "run", "voice", "--config", config, env={"ASSISTANT_VOICE__SPEAKER__WAV_DEVICE_NODE": str(unplugged)})
    wait_for(watcher, lambda rx: rx.msg.service == "voice" and rx.msg.state == "degraded", 60)
    out = _cli(procs, "say", "--config", config, "Is anybody there?", "--wait", "10")
    assert out.returncode == 1, out
    assert out.stderr.count("\n") == 1 and "speaker" in out.stderr and "cannot" in out.stderr, out.stderr
    status = _cli(procs, "status", "--config", config)
    row = next(line for line in status.stdout.splitlines() if line.startswith("voice "))
    assert row.split()[1] == "degraded", status.stdout
    # With a speaker it speaks, and say returns 0 once the sound plays.
    unplugged.touch()
    wait_for(watcher, lambda rx: rx.msg.service == "voice" and rx.msg.state == "ready", 20)
    out = _cli(procs, "say", "Hello there.", "--config", config)
    assert out.returncode == 0, out


def test_say_with_no_voice_service_says_so(procs):
    procs.broker()
    out = _cli(procs, "say", "hello", "--wait", "2")
    assert out.returncode == 1 and "no voice service answered" in out.stderr


def test_up_starts_the_status_page_by_default(procs, tmp_path):
    assert "ops" in Config().supervisor.services
    port = free_port()
    up = procs.start("assistant", "up", env={"ASSISTANT_SUPERVISOR__SERVICES": '["echo", "ops"]', "ASSISTANT_OPS__PORT": str(port)})
    deadline = time.monotonic() + 40
    body = b""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                body = r.read()
                break
        except OSError:
            time.sleep(0.3)
    assert b"Kiosk assistant" in body
    up.send_signal(signal.SIGTERM)
    out, err = up.communicate(timeout=20)
    assert up.returncode == 0
    assert "lost the bus broker" not in err and "Traceback" not in err, err
