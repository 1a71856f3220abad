"""The browser microphone on its own (no bus): one talker at a time, the talker's audio in a
continuous real-time stream with the quiet room in between, typed lines, hostile messages."""

import asyncio
import json
import threading
import time

import numpy as np
import pytest

from hardware.microphone import RATE
from hardware.microphone_web import WebMicrophone


@pytest.fixture
def mic():
    chunks, texts, future, lock = [], [], [], threading.Lock()

    def on_chunk(chunk):
        with lock:
            chunks.append(chunk)
            # A microphone never stamps audio it has not yet captured.
            if chunk.t0_ns + len(chunk.pcm) * 1_000_000_000 // RATE > time.monotonic_ns():
                future.append(chunk.t0_ns)

    m = WebMicrophone("127.0.0.1", 0)
    m.on_text = texts.append
    m.start(on_chunk)
    yield m, chunks, texts, lock
    m.stop()
    assert not future, f"{len(future)} chunk(s) stamped in the future"


async def _talk(port, actions, origin=None):
    import aiohttp

    headers = {"Origin": origin} if origin else {}
    got = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"http://127.0.0.1:{port}/mic", headers=headers) as ws:
            for action in actions:
                if isinstance(action, float):
                    await asyncio.sleep(action)
                elif isinstance(action, bytes):
                    await ws.send_bytes(action)
                elif action == "recv":
                    msg = await ws.receive(timeout=3)
                    got.append(msg.data)
                else:
                    await ws.send_str(action)
            await asyncio.sleep(0.1)
    return got


def test_the_talkers_audio_joins_a_continuous_stream_and_typed_lines_arrive(mic):
    m, chunks, texts, lock = mic
    tone = (np.sin(np.arange(320) * 2 * np.pi * 440 / RATE) * 8000).astype("<i2").tobytes()
    actions = [0.3] + [x for _ in range(25) for x in (tone, 0.02)] + [json.dumps({"type": "end"}),
               json.dumps({"type": "text", "text": "  what time is it  "}),
               json.dumps({"type": "text", "text": "bad\x07line"}), "recv", "not json", b"\x01", json.dumps({"type": "nope"})]
    got = asyncio.run(_talk(m.port, actions))
    time.sleep(0.3)
    with lock:
        stream = list(chunks)
    assert texts == ["what time is it"] and "error" in got[0]
    assert m.bad_messages == 4 and m.talkers == 1 and not m.talking
    # Continuous and in real time: every chunk starts where the previous one ended.
    for a, b in zip(stream, stream[1:]):
        assert b.t0_ns == a.t0_ns + len(a.pcm) * 1_000_000_000 // RATE
    loud = [c for c in stream if np.abs(c.pcm).max() > 4000]
    assert 25 <= len(loud) <= 27  # 25 chunks of tone; a late one may straddle a chunk boundary
    assert sum(int((np.abs(c.pcm) > 1000).sum()) for c in loud) > 0.8 * 25 * 320  # all of it arrived
    quiet = [c for c in stream if np.abs(c.pcm).max() < 100]
    assert len(quiet) >= 10  # the room before and after the talk
    assert abs(stream[-1].t0_ns - time.monotonic_ns()) < 0.2e9  # in real time
    assert m.overflow_samples == 0


def test_typed_lines_without_a_reader_are_counted_and_dropped():
    m = WebMicrophone("127.0.0.1", 0)
    assert m.on_text is None  # the Microphone default: the hearing service sets it
    m.start(lambda chunk: None)
    try:
        asyncio.run(_talk(m.port, [json.dumps({"type": "text", "text": "hello"}), json.dumps({"type": "nope"})]))
        time.sleep(0.1)
        assert m.texts == 1 and m.bad_messages == 1  # the connection outlived the unread line
    finally:
        m.stop()


def test_one_talker_at_a_time_and_foreign_pages_are_refused(mic):
    m, *_ = mic

    async def both():
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{m.port}/mic") as first:
                async with session.ws_connect(f"http://127.0.0.1:{m.port}/mic") as second:
                    busy = await second.receive(timeout=3)
                await first.send_str(json.dumps({"type": "end"}))
            return busy.data

    assert json.loads(asyncio.run(both())) == {"type": "busy"} and m.busy_refusals == 1
    import aiohttp

    with pytest.raises(aiohttp.WSServerHandshakeError) as err:
        asyncio.run(_talk(m.port, [], origin="http://evil.example"))
    assert err.value.status == 403
    assert asyncio.run(_talk(m.port, [], origin=f"http://localhost:{m.port + 1}")) == []  # the kiosk page's own origin


def test_a_late_burst_is_waited_for_not_cut_and_a_silent_talker_gives_way_to_the_room(mic):
    """A busy browser holds messages back and sends them in a burst: the stream waits for the late
    audio (no noise inside the speech, no sample lost, stamps continuous and never in the future),
    then catches up; a talker who stops sending without "end" is followed by the room in real time."""
    m, chunks, _, lock = mic
    ramp = np.arange(1, 40 * 384 + 1, dtype=np.int64)
    speech = (1000 + ramp % 20000).astype("<i2")  # every sample distinct from its neighbours, never quiet
    msgs = [speech[i:i + 384].tobytes() for i in range(0, len(speech), 384)]
    actions = [0.2]
    for k, msg in enumerate(msgs):
        if k == 10:
            actions.append(0.25)  # a 250 ms stall mid-speech ...
            actions.extend(msgs[k:k + 10])  # ... then ten messages at once
        elif 10 < k < 20:
            continue
        else:
            actions.extend([msg, 0.024])
    actions.append(1.5)  # no "end": the talker just goes quiet, still connected
    asyncio.run(_talk(m.port, actions))
    time.sleep(0.2)
    with lock:
        stream = list(chunks)
    for a, b in zip(stream, stream[1:]):
        assert b.t0_ns == a.t0_ns + len(a.pcm) * 1_000_000_000 // RATE
    pcm = np.concatenate([c.pcm for c in stream])
    start = int(np.argmax(pcm >= 1000))
    got = pcm[start:start + len(speech)]
    assert np.array_equal(got, speech), f"{int((got != speech).sum())} samples of the talker's audio changed or lost"
    assert m.holds >= 1 and m.noise_in_talk_ms == 0 and m.overflow_samples == 0
    assert m.max_late_ms > 150  # it did wait for the late burst
    assert abs(stream[-1].t0_ns - time.monotonic_ns()) < 0.2e9  # and is back in real time with the quiet room
    assert np.abs(stream[-1].pcm).max() < 100


def test_a_standing_surplus_is_shortened_in_quiet_only(mic):
    """A talker whose audio started out 300 ms ahead keeps that much buffered (latency for nothing):
    the buffer sheds it in the quiet before the speech, and the speech itself arrives whole."""
    import aiohttp

    m, chunks, _, lock = mic
    quiet = np.zeros(384, "<i2").tobytes()
    speech = (1000 + np.arange(1, 20 * 384 + 1) % 20000).astype("<i2")
    msgs = [quiet] * 70 + [speech[i:i + 384].tobytes() for i in range(0, len(speech), 384)]

    async def talk():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"http://127.0.0.1:{m.port}/mic") as ws:
                await asyncio.sleep(0.2)
                for _ in range(12):  # 290 ms at once
                    await ws.send_bytes(quiet)
                t0 = time.monotonic()
                for k, msg in enumerate(msgs):  # then in real time, on a schedule (a loaded box's late wake-ups do not add up)
                    await asyncio.sleep(max(0.0, t0 + k * 0.024 - time.monotonic()))
                    await ws.send_bytes(msg)
                await ws.send_str(json.dumps({"type": "end"}))
                await asyncio.sleep(0.1)

    asyncio.run(talk())
    time.sleep(0.2)
    with lock:
        pcm = np.concatenate([c.pcm for c in chunks])
    start = int(np.argmax(pcm >= 1000))
    assert np.array_equal(pcm[start:start + len(speech)], speech)
    assert 100 <= m.quiet_dropped_ms <= 400 and m.overflow_samples == 0, m.quiet_dropped_ms
