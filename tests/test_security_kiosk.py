"""Hostile peers against the whole kiosk (``assistant up``, the real services and rules): after
each attack the kiosk still answers a scripted turn, no service was stopped or restarted, and the
broker's heartbeat counts what it refused."""

from __future__ import annotations

import time

import pytest
import zmq

from assistant.bus import KeyStore, Publisher
from assistant.bus.keys import BROKER
from assistant.messages import Command, EmailSend, Heartbeat, Say, Utterance, encode

from .kiosk_ops import SERVICES, Kiosk

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory):
    k = Kiosk(tmp_path_factory.mktemp("kiosk"), mail=False)
    try:
        yield k.start()
    finally:
        k.close()


def answered(kiosk, question="what time is it") -> None:
    kiosk.silent()
    kiosk.engage()
    turn = kiosk.ask(question)
    kiosk.wait(lambda: turn in kiosk.replies, 20, f"a reply to {question!r}")


def bus_counter(kiosk, name: str, at_least: float) -> float:
    kiosk.wait(lambda: kiosk.counter("bus", name) >= at_least, 10, f"bus counter {name} >= {at_least}")
    return kiosk.counter("bus", name)


def test_hostile_peers_leave_the_kiosk_serving(kiosk):
    pids = dict(kiosk.pids)
    ctx = zmq.Context.instance()
    endpoint = kiosk.bus.endpoints.publish
    stop_all = encode(Command(service="*", command="stop"), seq=0, source="supervisor")

    # 1. No key at all, and 2. a key the broker does not know: the handshake fails.
    plain = ctx.socket(zmq.PUB)
    plain.connect(endpoint)
    stranger = ctx.socket(zmq.PUB)
    stranger.curve_publickey, stranger.curve_secretkey = zmq.curve_keypair()
    stranger.curve_serverkey = KeyStore(kiosk.runtime / "keys", auto_create=False).public(BROKER)
    stranger.connect(endpoint)
    time.sleep(0.5)
    for sock in (plain, stranger):
        sock.send_multipart(stop_all)
    bus_counter(kiosk, "rejected_handshake_failed", 1)
    bus_counter(kiosk, "rejected_unauthenticated", 1)
    plain.close(0)
    stranger.close(0)
    answered(kiosk)

    # 3. A service's own key (the camera's, as a compromised camera would hold it) out of its lane.
    camera = Publisher(ctx, endpoint, "camera", 1000, keys=kiosk.bus.keys)
    time.sleep(0.3)
    camera.send_raw(stop_all)
    camera.send_raw(encode(Say(text="I am the brain now"), seq=0, source="brain"))
    camera.send_raw(encode(EmailSend(send_id="evil", to=["x@evil.org"], subject="s", body="b"), seq=0, source="brain"))
    for i in range(50):  # ghost services for the status page
        camera.send_raw(encode(Heartbeat(service=f"ghost{i}", state="ready", pid=1, started_ns=0), seq=i, source="camera"))
    assert bus_counter(kiosk, "rejected_forbidden", 3) == 3
    bus_counter(kiosk, "rejected_impersonation", 50)
    camera.close()
    answered(kiosk, "what is the date")

    # 4. The voice's key with an oversized utterance and one whose play time is far ahead.
    voice = Publisher(ctx, endpoint, "voice", 1000, keys=kiosk.bus.keys)
    time.sleep(0.3)
    now = time.monotonic_ns()
    voice.send_raw(encode(Utterance(utterance_id="huge", text="", sample_rate=16000, play_at_ns=now, engine="x", pcm=b"\0" * (20 << 20)), seq=0, source="voice"))
    voice.send_raw(encode(Utterance(utterance_id="later", text="", sample_rate=16000, play_at_ns=now + 10**13, engine="x", pcm=b"\0" * 32000), seq=1, source="voice"))
    bus_counter(kiosk, "rejected_oversized", 1)
    voice.close()
    kiosk.wait(lambda: kiosk.counter("renderer", "malformed") >= 1, 10, "the renderer to drop the far-ahead utterance")
    answered(kiosk, "what time is it")

    assert {s: kiosk.pids.get(s) for s in SERVICES} == {s: pids.get(s) for s in SERVICES}, "a service was stopped or restarted"
    assert not [s for s in kiosk.pids if s.startswith("ghost")]
    assert kiosk.counter("bus", "forwarded") > 0
