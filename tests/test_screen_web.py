"""The kiosk page's server on its own: every viewer gets the frames (JPEG, with the time they
belong to), the sound (PCM with its play time), barge-in stops and the running transcript; the
clock answers pings; a viewer that cannot keep up loses frames (sound is never dropped)."""

import asyncio
import json
import struct
import time

import numpy as np

from hardware.screen_web import WebScreen


def _unpack(data: bytes):
    n = struct.unpack("<I", data[:4])[0]
    return json.loads(data[4:4 + n]), data[4 + n:]


async def _watch(url: str, seconds: float, read: bool = True):
    import aiohttp

    got = {"frame": [], "audio": [], "text": []}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url + "ws", max_msg_size=1 << 24) as ws:
            await ws.send_str(json.dumps({"type": "ping", "t": 12.5}))
            end = time.monotonic() + seconds
            if not read:  # a stalled viewer: connected, reading nothing
                await asyncio.sleep(seconds)
                return got
            while time.monotonic() < end:
                try:
                    msg = await ws.receive(timeout=max(0.01, end - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if msg.type == aiohttp.WSMsgType.BINARY:
                    head, payload = _unpack(msg.data)
                    got[head["kind"]].append((head, payload))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    got["text"].append(json.loads(msg.data))
                    if got["text"][-1]["type"] == "stop":
                        break
    return got


def test_viewers_get_frames_sound_stops_and_captions():
    web = WebScreen(port=0, max_width=320, delay_ms=80.0)
    try:
        async def scene():
            viewers = [asyncio.ensure_future(_watch(web.url, 15.0)) for _ in range(3)]
            await asyncio.sleep(0.5)
            loop = asyncio.get_running_loop()

            def feed():
                for i in range(30):
                    frame = np.full((360, 640, 3), i * 8, np.uint8)
                    web.show(frame, time.monotonic_ns())
                    time.sleep(1 / 30)
                web.audio(np.arange(1600, dtype=np.int16), 16000, time.monotonic_ns() + 50_000_000, "u1")
                web.caption("visitor", "what time is it")
                web.caption("assistant", "It's <b>ten</b>.")
                web.silence_from(time.monotonic_ns())

            await loop.run_in_executor(None, feed)
            return await asyncio.gather(*viewers)

        results = asyncio.run(scene())
        for got in results:
            assert len(got["frame"]) >= 20
            head, jpeg = got["frame"][-1]
            assert jpeg[:2] == b"\xff\xd8" and head["t_ms"] > 0
            (audio_head, pcm), = got["audio"]
            assert audio_head["id"] == "u1" and audio_head["rate"] == 16000
            assert np.array_equal(np.frombuffer(pcm, "<i2"), np.arange(1600))
            pong, *rest = [m for m in got["text"] if m["type"] == "pong"] + [None]
            assert pong["t"] == 12.5 and abs(pong["server_ms"] - time.monotonic_ns() / 1e6) < 5000
            kinds = [m["type"] for m in got["text"] if m["type"] != "pong"]
            assert kinds == ["caption", "caption", "stop"]
            assert [m["text"] for m in got["text"] if m["type"] == "caption"] == ["what time is it", "It's <b>ten</b>."]
        assert web.viewers_max == 3
    finally:
        web.close()


def test_a_viewer_that_does_not_read_has_its_frames_dropped_not_queued_without_end():
    web = WebScreen(port=0, max_width=640)
    try:
        async def scene():
            stalled = asyncio.ensure_future(_watch(web.url, 3.0, read=False))
            await asyncio.sleep(0.5)

            def feed():
                big = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)  # large JPEGs fill the socket
                for _ in range(90):
                    web.show(big.copy(), time.monotonic_ns())
                    time.sleep(1 / 30)
                web.audio(np.zeros(16000, np.int16), 16000, time.monotonic_ns(), "u2")

            await asyncio.get_running_loop().run_in_executor(None, feed)
            await stalled

        asyncio.run(scene())
        assert web.frames_dropped > 0  # bounded per viewer, never piling up without end
    finally:
        web.close()
