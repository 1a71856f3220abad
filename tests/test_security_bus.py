"""Hostile peers on the bus: no key, a wrong key, a valid key out of its lane, oversized and
inconsistent payloads, a slow subscriber, a second broker. Each ends with the bus still serving
(a real service answering) and the broker's counters showing what it refused.

The broker here runs the production publish rules (the other bus tests let twins publish anything).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq

from assistant.bus import BusClient, KeyStore, Publisher, Subscriber
from assistant.bus.keys import BROKER
from assistant.config import BusSettings
from assistant.messages import Command, Heartbeat, Say, SystemState, Utterance, encode

from .procs import REPO, wait_for

STRICT = {"ASSISTANT_BUS__PUBLISH_RULES": "{}", "ASSISTANT_BUS__GUEST_TYPES": '["system.probe", "system.heartbeat", "system.state"]'}


def bus_counters(watcher: BusClient, pred, timeout: float = 10.0) -> dict:
    rx = wait_for(watcher, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "bus" and pred(rx.msg.counters), timeout)
    return rx.msg.counters


@pytest.fixture
def strict(procs):
    """A broker with the production rules, the echo service, and a watcher (a guest: it only listens)."""
    procs.broker(env=STRICT)
    procs.start("services.echo", env=STRICT)
    watcher = procs.client([Heartbeat.TYPE, SystemState.TYPE, Say.TYPE, Command.TYPE, Utterance.TYPE], "watcher")
    wait_for(watcher, lambda rx: getattr(rx.msg, "service", "") == "echo" and rx.msg.state == "ready", 20)
    return procs, watcher


def still_serving(procs, watcher: BusClient) -> None:
    """The brain's key may ask for speech, and the echo service (a real process) still answers."""
    brain = procs.client([Say.TYPE], "brain")
    brain.publish(Say(text="still serving"), turn="echo:after")
    rx = wait_for(brain, lambda rx: rx.header.source == "echo" and rx.header.turn == "echoed:after")
    assert rx.msg.text == "still serving"


def test_unauthenticated_and_wrong_key_peers_are_refused(strict):
    procs, watcher = strict
    ctx = zmq.Context.instance()
    endpoint = watcher.endpoints.publish
    # No CURVE at all: the handshake fails; nothing it sends arrives.
    plain = ctx.socket(zmq.PUB)
    plain.connect(endpoint)
    # CURVE with a key the broker does not know (the attacker knows the broker's public key).
    stranger = ctx.socket(zmq.PUB)
    pub, sec = zmq.curve_keypair()
    stranger.curve_publickey, stranger.curve_secretkey = pub, sec
    stranger.curve_serverkey = KeyStore(procs.runtime_dir / "keys", auto_create=False).public(BROKER)
    stranger.connect(endpoint)
    time.sleep(0.5)
    for i in range(20):
        for sock in (plain, stranger):
            sock.send_multipart(encode(Command(service="*", command="stop"), seq=i, source="supervisor"))
    seen = []  # everything the watcher (subscribed to commands) hears until the broker counted both refusals
    wait_for(watcher, lambda rx: seen.append(rx.msg) or (isinstance(rx.msg, Heartbeat) and rx.msg.service == "bus"
                                                         and rx.msg.counters["rejected_unauthenticated"] >= 1
                                                         and rx.msg.counters["rejected_handshake_failed"] >= 1), 10)
    assert not [m for m in seen if isinstance(m, Command)]
    # A plain subscriber hears nothing either (visitors' words are not for it).
    eavesdropper = ctx.socket(zmq.SUB)
    eavesdropper.setsockopt(zmq.SUBSCRIBE, b"")
    eavesdropper.connect(watcher.endpoints.subscribe)
    assert not eavesdropper.poll(1500)
    for sock in (plain, stranger, eavesdropper):
        sock.close(0)
    still_serving(procs, watcher)
    # No stop command went through: the echo service is alive and no command was forwarded.
    assert procs.children[1].poll() is None


def test_a_valid_key_cannot_leave_its_lane_or_name_itself_otherwise(strict):
    procs, watcher = strict
    camera = procs.client(source="camera")
    camera.publish(Command(service="*", command="stop"))          # only operator and supervisor
    camera.publish(Say(text="I am the brain now"))                 # only the brain (and operator)
    camera.publish(Heartbeat(service="brain", state="ready", pid=1, started_ns=0))  # not its name
    for i in range(100):                                           # 100 fake services
        camera.publish(Heartbeat(service=f"ghost{i}", state="ready", pid=1, started_ns=0))
    counters = bus_counters(watcher, lambda c: c["rejected_forbidden"] >= 2 and c["rejected_impersonation"] >= 101)
    assert counters["rejected_forbidden"] == 2
    # The source is the key's identity, whatever the sender writes in the header.
    raw = Publisher(zmq.Context.instance(), watcher.endpoints.publish, "brain", 1000, keys=procs.client().keys)
    time.sleep(0.3)
    raw.send_raw(encode(Say(text="who am I"), seq=0, source="operator"))
    rx = wait_for(watcher, lambda rx: isinstance(rx.msg, Say) and rx.msg.text == "who am I")
    assert rx.header.source == "brain"
    raw.close()
    still_serving(procs, watcher)
    ghosts = []
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        rx = watcher.recv(50)
        if rx is not None and isinstance(rx.msg, Heartbeat):
            ghosts.append(rx.msg.service)
    assert not [g for g in ghosts if g.startswith("ghost") or (g == "brain")]


def test_oversized_and_inconsistent_payloads_are_dropped_and_counted(strict):
    procs, watcher = strict
    voice = procs.client(source="voice")
    big = b"\0" * (13 * 1024 * 1024)  # over 120 s of 48 kHz audio
    voice.publish(Utterance(utterance_id="big", text="", sample_rate=48000, play_at_ns=time.monotonic_ns(), engine="x", pcm=big))
    counters = bus_counters(watcher, lambda c: c["rejected_oversized"] >= 1)
    assert counters["rejected_oversized"] == 1
    # Within the frame limit but wrong: the receiving service drops and counts them.
    bad = [
        Utterance(utterance_id="far", text="", sample_rate=16000, play_at_ns=time.monotonic_ns() + 10**12, engine="x", pcm=b"\0" * 3200),
        # 150 s at 8 kHz: under the frame limit, over the longest utterance.
        Utterance(utterance_id="long", text="", sample_rate=8000, play_at_ns=time.monotonic_ns(), engine="x", pcm=b"\0" * 2_400_000),
        Utterance(utterance_id="rate", text="", sample_rate=1, play_at_ns=time.monotonic_ns(), engine="x", pcm=b"\0" * 3200),
    ]
    for msg in bad:
        voice.publish(msg)
    ok = Utterance(utterance_id="ok", text="", sample_rate=16000, play_at_ns=time.monotonic_ns(), engine="x", pcm=b"\0" * 3200)
    voice.publish(ok)
    rx = wait_for(watcher, lambda rx: isinstance(rx.msg, Utterance))
    assert rx.msg.utterance_id == "ok"
    assert watcher.sub.stats.malformed >= 3
    still_serving(procs, watcher)


def test_a_slow_subscriber_costs_itself_not_the_broker(procs, caplog):
    procs.broker(env={**STRICT, "ASSISTANT_BUS__SUBSCRIBER_HWM": "1000", "ASSISTANT_BUS__HWM": "2000"})
    sleeper = Subscriber(zmq.Context.instance(), procs.client().endpoints.subscribe, [Say.TYPE], hwm=100, identity="sleeper")
    brain = procs.client([Say.TYPE], "brain")
    time.sleep(0.3)
    rss0 = _rss_kib(procs.children[0].pid)
    for round_ in range(5):
        for i in range(4000):
            brain.publish(Say(text="y" * 2000))
        time.sleep(0.2)
    grown = _rss_kib(procs.children[0].pid) - rss0
    # 20,000 x 2 kB published: the broker queues at most 1,000 for the sleeper (~2 MB).
    assert grown < 40_000, f"broker grew by {grown} KiB"
    n = 0
    while sleeper.recv(timeout_ms=300) is not None:
        n += 1
    brain.publish(Say(text="after"))
    with caplog.at_level(logging.WARNING, logger="assistant.bus.client"):
        while (rx := sleeper.recv(timeout_ms=2000)) is not None and rx.msg.text != "after":
            pass
    assert sleeper.gaps == 20_000 - n > 0
    lost_lines = [r for r in caplog.records if "message(s) from" in r.getMessage()]
    assert len(lost_lines) <= 1
    sleeper.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_second_broker_is_refused_and_leaves_the_first_ones_sockets(procs):
    first = procs.broker()
    socks = sorted(p.stat().st_ino for p in procs.runtime_dir.glob("bus-*.sock"))
    second = procs.start("services.bus")
    out, err = second.communicate(timeout=30)
    assert second.returncode == 1
    assert "another bus broker" in err and str(first.pid) in err
    assert sorted(p.stat().st_ino for p in procs.runtime_dir.glob("bus-*.sock")) == socks
    client = procs.client([Say.TYPE], "late-joiner")  # a new client still joins the live broker
    client.publish(Say(text="hello"))
    assert wait_for(client, lambda rx: isinstance(rx.msg, Say)).msg.text == "hello"
    assert first.poll() is None


def test_runtime_dir_of_someone_else_or_open_to_all_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o777)
    os.chmod(run, 0o777)
    env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(run), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "services.bus"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "writable by everyone" in out.stderr
    if os.geteuid() == 0:
        os.chmod(run, 0o750)
        os.chown(run, 4242, 4242)
        out = subprocess.run([sys.executable, "-m", "services.bus"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
        assert out.returncode == 1 and "belongs to uid 4242" in out.stderr
    assert not list(run.glob("bus-*.sock"))


def test_binding_beyond_loopback_needs_allow_remote(tmp_path):
    env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(tmp_path / "run"), "ASSISTANT_BUS__TRANSPORT": "tcp",
           "ASSISTANT_BUS__HOST": "0.0.0.0", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-m", "services.bus"], cwd=REPO, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "not a loopback address" in out.stderr


def test_installed_keys_are_not_made_on_the_fly(tmp_path):
    """With ``keys_dir`` set (production), a missing pair is an error that says how to make it."""
    keys = KeyStore(tmp_path / "keys", auto_create=False)
    with pytest.raises(Exception, match="assistant install"):
        BusClient(BusSettings(runtime_dir=str(tmp_path / "run"), keys_dir=str(tmp_path / "keys")), "brain")
    keys.make("brain")
    assert keys.pair("brain")[0] in [zmq.utils.z85.encode(k) for k in keys.peers()]


def test_publish_rules():
    from assistant.bus.policy import Policy

    p = Policy()
    assert p.allows("brain", "voice.say") and p.allows("operator", "system.command") and p.allows("supervisor", "system.command")
    assert not p.allows("voice", "voice.say") and p.allows("voice", "voice.utterance") and p.allows("voice", "voice.newtype")
    assert not p.allows("camera", "system.command") and not p.allows("email", "email.send") and p.allows("email", "email.received")
    assert not p.allows("hearing", "hearing.phrases") and p.allows("hearing", "hearing.transcript")
    assert p.allows("stranger", "system.probe") and not p.allows("stranger", "voice.say")
    assert Policy({"kiosk-tool": ("voice.say",)}).allows("kiosk-tool", "voice.say")
    assert Policy(guest=("*",)).allows("stranger", "email.send") and Policy(guest=("*",)).speaks_for_others("stranger")
