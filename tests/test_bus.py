"""The bus between real processes: round trips of every type, bursts, gaps, slow joiners, fuzz."""

import json
from types import SimpleNamespace
import subprocess
import sys
import time

import msgspec
import zmq

from assistant.bus import Publisher, Subscriber
from assistant.messages import REGISTRY, Heartbeat, Say, SystemState, encode

from .procs import REPO, wait_for

ROUND_TRIP_SENDER = r"""
import json, sys, time
sys.path.insert(0, ".")
from tests.msgsamples import all_samples, same
from tests.procs import Procs
from assistant.bus import BusClient
from assistant.config import BusSettings
client = BusClient(BusSettings(runtime_dir=sys.argv[1]), "sender", [""])
client.wait_live(10)
sent = {m.TYPE: m for m in all_samples(seed=5)}
for m in sent.values():
    client.publish(m, turn="echo:" + m.TYPE)
got = {}
deadline = time.monotonic() + 15
while len(got) < len(sent) and time.monotonic() < deadline:
    rx = client.recv(timeout_ms=100)
    if rx and rx.header.source == "echo" and rx.header.turn.startswith("echoed:"):
        got[rx.msg.TYPE] = same(rx.msg, sent[rx.msg.TYPE])
print(json.dumps({"sent": len(sent), "intact": sorted(t for t, ok in got.items() if ok), "bad": sorted(t for t, ok in got.items() if not ok)}))
"""


def test_every_message_type_round_trips_between_processes(procs):
    procs.broker()
    procs.start("services.echo")
    watcher = procs.client([SystemState.TYPE])
    wait_for(watcher, lambda rx: rx.msg.service == "echo" and rx.msg.state == "ready", 20)
    out = subprocess.run([sys.executable, "-c", ROUND_TRIP_SENDER, str(procs.runtime_dir)], cwd=REPO, env=procs.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["bad"] == []
    assert set(result["intact"]) == set(REGISTRY), set(REGISTRY) - set(result["intact"])


def test_burst_of_10000_small_messages_is_not_dropped(procs):
    procs.broker()
    sub = procs.client(["voice.say"], "receiver")
    pub = procs.client(source="burst")
    for i in range(10_000):
        pub.publish(Say(text=f"m{i}"))
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 10_000 and time.monotonic() < deadline:
        rx = sub.recv(timeout_ms=200)
        if rx is not None and rx.header.source == "burst":
            got.append(rx.header.seq)
    assert len(got) == 10_000
    assert got == sorted(got) and sub.sub.gaps == 0


def test_sequence_gaps_are_detected_and_counted(procs):
    procs.broker(env={"ASSISTANT_BUS__HWM": "100"})  # a small queue so that flooding drops
    ctx = zmq.Context.instance()
    sub = Subscriber(ctx, procs.client().endpoints.subscribe, ["voice.say"], hwm=50)
    pub = procs.client(source="flood")
    # Let the subscription reach the broker, then flood a subscriber that is not reading.
    time.sleep(0.3)
    for i in range(20_000):
        pub.publish(Say(text="x" * 50))
    time.sleep(0.5)
    n = 0
    while sub.recv(timeout_ms=300) is not None:
        n += 1
    assert n < 20_000
    # A loss is visible once a later message arrives: send one after the flood has drained.
    pub.publish(Say(text="after the flood"))
    assert wait_for(SimpleNamespace(recv=sub.recv), lambda rx: rx.msg.text == "after the flood")
    assert sub.gaps == 20_000 - n
    sub.close()


def test_publisher_that_starts_and_sends_at_once_loses_nothing(procs):
    """Slow joiner: a fresh process publishes right after wait_live; the first message arrives."""
    procs.broker()
    sub = procs.client(["voice.say"])
    code = (
        "import sys; sys.path.insert(0,'.');"
        "from assistant.bus import BusClient; from assistant.config import BusSettings; from assistant.messages import Say;"
        f"c=BusClient(BusSettings(runtime_dir={str(procs.runtime_dir)!r}),'quick'); c.wait_live(10);"
        "[c.publish(Say(text=str(i))) for i in range(3)]; import time; time.sleep(0.2)"
    )
    subprocess.run([sys.executable, "-c", code], env=procs.env, cwd=REPO, timeout=30, check=True)
    texts = [wait_for(sub, lambda rx: rx.header.source == "quick").msg.text for _ in range(3)]
    assert texts == ["0", "1", "2"]


def _raw_frames_strategy_samples(n: int):
    import random

    rng = random.Random(42)
    good = encode(Say(text="fine"), seq=0, source="fuzz")
    out = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            out.append([rng.randbytes(rng.randrange(0, 40)) for _ in range(rng.randrange(1, 5))])
        elif kind == 1:
            out.append([b"voice.say", rng.randbytes(30)])
        elif kind == 2:
            out.append([b"voice.say", good[1][: rng.randrange(0, len(good[1]))]])
        elif kind == 3:
            out.append([b"zzz.unknown", msgspec.msgpack.encode((("zzz.unknown", 1, 0, 0, "x", ""), {}))])
        else:
            out.append([b"voice.say", good[1], b"extra payload"])
    return out


def test_fuzzed_frames_to_the_broker_and_a_service(procs):
    procs.broker()
    procs.start("services.echo")
    watcher = procs.client([Heartbeat.TYPE, SystemState.TYPE])
    wait_for(watcher, lambda rx: getattr(rx.msg, "service", "") == "echo" and rx.msg.state == "ready", 20)
    raw = Publisher(zmq.Context.instance(), watcher.endpoints.publish, "fuzz", 1000)
    time.sleep(0.3)  # raw socket: no probe, so give the broker's subscription time to arrive
    for frames in _raw_frames_strategy_samples(500):
        raw.send_raw(frames)
    # Header valid, body wrong: the broker forwards it, the service must drop and count it.
    for i in range(20):
        raw.send_raw([b"voice.say", msgspec.msgpack.encode((("voice.say", 1, i, 0, "fuzz", "echo:x"), {"text": 12}))])
    bus_hb = wait_for(watcher, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "bus" and rx.msg.counters["malformed"] + rx.msg.counters["unknown"] >= 500, 10)
    assert bus_hb.msg.counters["unknown"] >= 100
    echo_hb = wait_for(watcher, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "echo" and rx.msg.counters["malformed"] >= 20, 10)
    assert echo_hb.msg.state == "ready"
    # Both still work after the garbage.
    client = procs.client([Say.TYPE], "after")
    client.publish(Say(text="still alive"), turn="echo:1")
    rx = wait_for(client, lambda rx: rx.header.source == "echo")
    assert rx.msg.text == "still alive"
    raw.close()


def test_tcp_transport_on_loopback(procs):
    import socket

    ports = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        s.close()
    tcp = {"ASSISTANT_BUS__TRANSPORT": "tcp", "ASSISTANT_BUS__PUB_PORT": str(ports[0]), "ASSISTANT_BUS__SUB_PORT": str(ports[1])}
    procs.env.update(tcp)
    proc = procs.start("services.bus")
    procs.start("services.echo")
    from assistant.bus import BusClient
    from assistant.config import BusSettings

    # runtime_dir: where the broker keeps the CURVE keys (tcp moves the sockets, not the keys)
    client = BusClient(BusSettings(transport="tcp", pub_port=ports[0], sub_port=ports[1], runtime_dir=str(procs.runtime_dir)), "tcp-test", [Say.TYPE])
    client.wait_live(15)
    deadline = time.monotonic() + 15
    rx = None
    while rx is None and time.monotonic() < deadline:
        client.publish(Say(text="over tcp"), turn="echo:tcp")
        try:
            rx = wait_for(client, lambda rx: rx.header.source == "echo", 1.0)
        except AssertionError:
            pass
    assert rx is not None and rx.msg.text == "over tcp"
    assert proc.poll() is None
    client.close()
