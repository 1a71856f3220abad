"""Service runtime over real processes: lifecycle on the bus, heartbeats, sd_notify, clean stop."""

import signal
import socket
import time

from assistant.messages import Heartbeat, SystemState

from .procs import wait_for


def test_lifecycle_heartbeat_notify_and_sigterm(procs, tmp_path):
    procs.broker()
    watcher = procs.client([SystemState.TYPE, Heartbeat.TYPE])
    notify_path = tmp_path / "notify.sock"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(10)
    proc = procs.start("services.echo", env={"NOTIFY_SOCKET": str(notify_path)})

    states = []
    wait_for(watcher, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "echo" and (states.append(rx.msg.state) or rx.msg.state == "ready"), 20)
    assert states[-2:] == ["starting", "ready"]
    assert notify.recv(100) == b"READY=1"
    hb1 = wait_for(watcher, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "echo")
    hb2 = wait_for(watcher, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "echo")
    period = (hb2.header.ts_ns - hb1.header.ts_ns) / 1e9
    assert 0.8 < period < 1.3, period
    assert hb2.msg.pid == proc.pid and {"in", "out", "malformed", "gaps"} <= set(hb2.msg.counters)
    assert notify.recv(100) == b"WATCHDOG=1"

    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(5)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0
    assert elapsed < 2.0, elapsed
    got = []
    while True:
        try:
            got.append(notify.recv(100))
        except TimeoutError:
            break
        if got[-1] == b"STOPPING=1":
            break
    assert b"STOPPING=1" in got
    final = []
    wait_for(watcher, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "echo" and (final.append(rx.msg.state) or rx.msg.state == "stopped"))
    assert final == ["stopping", "stopped"]


def test_sigint_stops_cleanly_too(procs):
    procs.broker()
    watcher = procs.client([SystemState.TYPE])
    proc = procs.start("services.echo")
    wait_for(watcher, lambda rx: rx.msg.service == "echo" and rx.msg.state == "ready", 20)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(2) == 0


def test_service_without_a_broker_fails_with_one_clear_line(procs):
    proc = procs.start("services.echo", env={"ASSISTANT_BUS__CONNECT_TIMEOUT_S": "0.5"})
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert "no answer from the bus broker" in err and "assistant run bus" in err
