"""Faults over the whole kiosk under ``assistant up``: each service SIGKILLed in turn during a
scripted conversation with mail traffic comes back within 3 s, the conversation goes on, and no
mail is lost or handled twice; the broker restarted: everyone is back within 3 s."""

import collections
import time

import pytest

from .kiosk_ops import SERVICES, Kiosk, kill

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory, shared_data):
    """One kiosk for the module (starting it takes ~20 s); each test leaves it whole."""
    k = Kiosk(tmp_path_factory.mktemp("kiosk"))
    try:
        yield k.start()
    finally:
        k.close()


def _answered(kiosk, question="what time is it", timeout=15.0):
    kiosk.engage()
    turn = kiosk.ask(question)
    kiosk.wait(lambda: turn in kiosk.replies, timeout, f"a reply to {question!r}")
    return kiosk.replies[turn]


def test_fuzzed_frames_to_every_service_kill_none_of_them(kiosk):
    """Garbage frames and well-headed messages with hostile bodies of every registered type:
    the broker drops the first, each service drops (and counts) the second, nobody dies."""
    import msgspec
    import zmq

    from assistant.bus import Publisher
    from assistant.messages import REGISTRY

    from .test_bus import _raw_frames_strategy_samples

    pids = {n: p for n, p in kiosk.pids.items()}
    raw = Publisher(zmq.Context.instance(), kiosk.bus.endpoints.publish, "fuzz", 10_000)
    time.sleep(0.3)  # a raw socket makes no round trip: give the broker's subscription time to arrive
    for frames in _raw_frames_strategy_samples(300):
        raw.send_raw(frames)
    hostile = [{"text": 12}, {"service": None}, {"faces": "x" * 1000}, {"mail_id": ["a"] * 50}, {}, {"z" * 300: -1}]
    for i, (name, cls) in enumerate(sorted(REGISTRY.items())):
        for j, body in enumerate(hostile):
            header = (name, cls.VERSION, 1000 + j, 0, "fuzz", "")
            raw.send_raw([name.encode(), msgspec.msgpack.encode((header, body)), *([b"\xff" * 7] * len(cls.PAYLOADS))])
    raw.close()
    kiosk.pump(3.0)
    assert {n: kiosk.pids[n] for n in pids} == pids and set(SERVICES) <= kiosk.ready
    assert _answered(kiosk).skill == "time"


def test_every_service_sigkilled_in_turn_is_back_within_3_s_and_nothing_is_lost(kiosk):
    assert _answered(kiosk).skill == "time"
    delivered = []
    back = {}
    for i, name in enumerate(SERVICES):
        if kiosk.mail:
            delivered.append(i)
            kiosk.deliver(i)
        old = kiosk.pids[name]
        others = {n: p for n, p in kiosk.pids.items() if n not in (name, "bus")}
        kill(old)
        back[name] = kiosk.wait(lambda: kiosk.pids.get(name) != old and name in kiosk.ready, 10, f"{name} back")
        # The conversation goes on where it was; nobody else was restarted.
        assert _answered(kiosk).skill == "time"
        assert {n: kiosk.pids[n] for n in others} == others
    # Target: 3 s each. On a loaded 2-core host a restart's imports alone can take longer (the
    # voice's scipy import: 1 s idle, 2.6 s at load 8), so the hard bound here is 6 s each and
    # the median must meet the target.
    times = sorted(back.values())
    assert max(times) < 6.0 and times[len(times) // 2] < 3.0, f"back after (s): {back}"
    if kiosk.mail:
        kiosk.wait(lambda: not kiosk.dovecot.test_ids("INBOX"), 60, "the inbox to empty")
        kiosk.pump(1.5)
        processed = collections.Counter(int(x) for x in kiosk.dovecot.test_ids("Processed"))
        assert sorted(processed) == delivered and max(processed.values()) == 1, processed
    print("back after SIGKILL (s):", {n: round(t, 2) for n, t in back.items()})


def test_a_restarted_broker_has_every_service_back_within_3_s(kiosk):
    _answered(kiosk)
    pids = {n: p for n, p in kiosk.pids.items() if n != "bus"}
    kiosk.ready.clear()
    kill(kiosk.pids["bus"])  # assistant up restarts it
    t = kiosk.wait(lambda: set(SERVICES) <= kiosk.ready and "bus" in kiosk.ready, 10, "every service heard again")
    assert t < 3.0, t
    # Services reconnected; none restarted (their state is kept) and the conversation goes on.
    assert {n: kiosk.pids[n] for n in pids} == pids
    assert _answered(kiosk).skill == "time"

