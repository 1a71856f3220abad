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


def _status(kiosk) -> dict:
    import json
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{kiosk.ops_port}/api/status", timeout=5) as r:
        return json.load(r)


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
    # Each one back within 3 s (measured on 2 cores with the whole kiosk running: 0.4-1.0 s).
    # Start-up keeps slow work off the way to "ready": the voice imports its loudness meter
    # (scipy, 1-2.6 s) on a worker thread after it is up.
    assert max(back.values()) < 3.0, f"back after (s): {back}"
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



def test_camera_mic_and_speaker_unplugged_and_plugged_back_are_recovered(kiosk, tmp_path):
    """The device twins vanish (their device nodes are deleted) and come back: every service
    notices, keeps running, and works again; no process restarts."""
    from bench.lib.wer import wer

    from .hearing_audio import synth

    question = "where is the meeting room"
    wav = tmp_path / "question.wav"
    synth(question, wav)
    assert _answered(kiosk).skill == "time"
    pids = dict(kiosk.pids)
    kiosk.pump(1.2)  # a fresh heartbeat from everyone
    c = kiosk.counter
    was = {"lost": c("camera", "camera_lost"), "opened": c("camera", "camera_opened"),
           "mic_errors": c("hearing", "mic_errors"), "mic_reopens": c("hearing", "mic_reopens"),
           "speaker_reopened": c("voice", "speaker_reopened")}
    assert c("voice", "speaker_available") == 1

    kiosk.unplug()
    kiosk.wait(lambda: c("camera", "camera_lost") > was["lost"] and c("hearing", "mic_errors") > was["mic_errors"]
               and c("voice", "speaker_available") == 0, 5, "every device noticed gone")
    # The operator sees it on the status page.
    kiosk.wait(lambda: _status(kiosk)["devices"] == {"camera": False, "microphone": False, "speaker": False}, 5,
               "the status page to show the devices missing")
    # Meanwhile the kiosk goes on: the brain answers, and the voice fails that reply at once
    # instead of playing it stale when the speaker is back.
    kiosk.engage()
    turn = kiosk.ask("what time is it")
    kiosk.wait(lambda: any(d.last for d in kiosk.dones.get(turn, [])), 10, "the reply's voice.done")
    done = kiosk.dones[turn][-1]
    assert done.status == "failed" and "speaker" in done.detail, done
    frames = c("camera", "frames")
    kiosk.pump(1.2)
    assert c("camera", "frames") == frames, "no frames from an unplugged camera"

    kiosk.plug()
    t = kiosk.wait(lambda: c("camera", "camera_opened") > was["opened"] and c("hearing", "mic_reopens") > was["mic_reopens"]
                   and c("voice", "speaker_reopened") > was["speaker_reopened"] and c("voice", "speaker_available") == 1,
                   10, "every device back")
    kiosk.wait(lambda: c("camera", "frames") > frames + 10, 5, "frames again")
    kiosk.wait(lambda: _status(kiosk)["devices"] == {"camera": True, "microphone": True, "speaker": True}, 5,
               "the status page to show the devices back")
    # The microphone: nobody engaged (so nothing is said over the speech), speech heard again.
    kiosk.leave()
    kiosk.silent(1.0, timeout=90)
    heard = len(kiosk.heard)
    kiosk.say_into_mic(wav)
    kiosk.wait(lambda: len(kiosk.heard) > heard, 20, "the visitor heard through the microphone again")
    assert wer(question, kiosk.heard[heard]) <= 0.3, kiosk.heard[heard:]
    # The speaker: a reply is played to its end again.
    kiosk.engage()
    turn = kiosk.ask("what time is it")
    kiosk.wait(lambda: any(d.last for d in kiosk.dones.get(turn, [])), 60, "the reply played")
    assert kiosk.dones[turn][-1].status == "finished", kiosk.dones[turn]
    assert {n: kiosk.pids[n] for n in pids} == pids, "nobody was restarted"
    print(f"devices back {t:.2f} s after being plugged in")


def test_no_service_sent_a_malformed_message(kiosk):
    """Every message our own services sent through all of the above decoded at its receivers
    (the fuzzer's garbage is dropped by design; nothing else may be)."""
    kiosk.pump(1.0)
    import re

    sent_by = [re.search(r"dropped malformed message: \S+ from '([^']+)'", line) for line in kiosk.up_log().splitlines()]
    bad = [m.group(0) for m in sent_by if m and m.group(1) in [*SERVICES, "bus"]]
    assert not bad, "\n".join(bad[:5])
