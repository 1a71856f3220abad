"""The assistant CLI over real processes: up restarts crashed children, status, say, tail, config errors."""

import os
import signal
import subprocess
import sys
import time

import pytest

from assistant.messages import Say, SystemState

from .procs import REPO, wait_for


def _cli(procs, *args, timeout=30, env=None):
    return subprocess.run([sys.executable, "-m", "assistant", *args], cwd=REPO, env={**procs.env, **(env or {})}, capture_output=True, text=True, timeout=timeout)


def _status_pids(procs) -> dict[str, str]:
    out = _cli(procs, "status", "--wait", "1.5", env={"ASSISTANT_SUPERVISOR__SERVICES": '["echo"]'})
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    return {r[0]: r[2] for r in rows if len(r) >= 3}, out


def test_up_restarts_a_killed_service_and_stops_everything_on_sigterm(procs):
    up = procs.start("assistant", "up", env={"ASSISTANT_SUPERVISOR__SERVICES": '["echo"]'})
    deadline = time.monotonic() + 30
    while (procs.runtime_dir / "bus-sub.sock").exists() is False and time.monotonic() < deadline:
        time.sleep(0.05)
    watcher = procs.client([SystemState.TYPE])
    ready = wait_for(watcher, lambda rx: rx.msg.service == "echo" and rx.msg.state == "ready", 30)
    pids, out = _status_pids(procs)
    assert out.returncode == 0, out.stdout + out.stderr
    assert pids["echo"] == str(ready.msg.pid) and pids["bus"] != "-"

    os.kill(ready.msg.pid, signal.SIGKILL)
    t0 = time.monotonic()
    back = wait_for(watcher, lambda rx: rx.msg.service == "echo" and rx.msg.state == "ready" and rx.msg.pid != ready.msg.pid, 10)
    assert time.monotonic() - t0 < 3.0
    pids, out = _status_pids(procs)
    assert pids["echo"] == str(back.msg.pid)

    up.send_signal(signal.SIGTERM)
    assert up.wait(10) == 0
    for pid in (back.msg.pid, int(pids["bus"])):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_status_exits_1_when_an_expected_service_is_missing(procs):
    procs.broker()
    out = _cli(procs, "status", "--wait", "1.2", env={"ASSISTANT_SUPERVISOR__SERVICES": '["echo"]'})
    assert out.returncode == 1
    assert "missing: echo" in out.stderr
    assert any(line.startswith("bus ") and "ready" in line for line in out.stdout.splitlines())


def test_say_publishes_and_tail_prints_one_line_per_message(procs):
    procs.broker()
    tail = procs.start("assistant", "tail", "voice.", "-n", "1")
    time.sleep(1.5)  # tail's own start-up (it probes the bus before reading)
    watcher = procs.client([Say.TYPE])
    assert _cli(procs, "say", "--no-wait", "hello", "there").returncode == 0
    rx = wait_for(watcher, lambda rx: True)
    assert rx.msg.text == "hello there"
    out, _ = tail.communicate(timeout=20)
    lines = out.strip().splitlines()
    assert len(lines) == 1 and "voice.say" in lines[0] and '"hello there"' in lines[0]


@pytest.mark.parametrize(
    "content, env, needle",
    [
        ("[voice]\nlangg = 'en'\n", {}, "voice.langg: unknown key"),
        ("[bus]\nhwm = 'many'\n", {}, "bus.hwm: Expected `int`, got `str`"),
        ("", {"ASSISTANT_BUS__HWM": "lots"}, "environment variable ASSISTANT_BUS__HWM"),
        (None, {}, "unreadable"),
        ("[bus\n", {}, "not valid TOML"),
    ],
)
@pytest.mark.parametrize("command", [["status"], ["run", "echo"], ["run", "bus"]])
def test_config_errors_exit_2_with_one_line(procs, tmp_path, content, env, needle, command):
    path = tmp_path / "assistant.toml"
    if content is None:
        path.mkdir()  # a directory where the file should be: unreadable
    else:
        path.write_text(content)
    args = ["--config", str(path), *command] if command[0] == "status" else [*command, "--config", str(path)]
    out = _cli(procs, *args, env=env)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], out.stderr


def test_missing_config_file_and_unknown_service(procs, tmp_path):
    out = _cli(procs, "--config", str(tmp_path / "nope.toml"), "status")
    assert out.returncode == 2 and "does not exist" in out.stderr
    out = _cli(procs, "run", "nosuch")
    assert out.returncode == 2 and "unknown service 'nosuch'" in out.stderr
