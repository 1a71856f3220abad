"""The kiosk page: the live face and its voice in a browser, in sync, with a microphone button and a
text box (served on loopback by default, guarded as every web server is: ``assistant.web``).

Routes: ``/`` the page (``kiosk.html``), ``/ws`` one WebSocket per viewer, ``/config.json`` what
the page needs (where the browser microphone is, the jitter delay), ``/stats.json`` what the
pages measured (fps, A/V offset, audio timing), ``/frame.jpg`` the latest frame, ``/audio.wav``
and ``/state.json`` the latest utterance (for scripts).

Over ``/ws`` the server sends binary messages ``[u32 header length][JSON header][payload]``:
``{"kind": "frame", "t_ms": ...}`` + JPEG, and ``{"kind": "audio", "play_at_ms": ..., "rate": ...,
"id": ...}`` + int16 PCM, and text messages: ``pong`` (clock sync), ``stop`` (barge-in), ``caption``
(the running transcript). Times are the kiosk's ``monotonic`` clock in ms; the page maps them to
its own clock by ping/pong and shows each frame, and starts each sound on the Web Audio clock,
``delay_ms`` after the time the renderer meant: the same delay for both, so they stay together.

Each new frame is JPEG-encoded at most once (on a thread of its own, never the renderer's) and
only while someone watches; a viewer that cannot keep up loses frames, never sound.
"""

from __future__ import annotations

import io
import json
import logging
import struct
import threading
import time
import wave
from importlib import resources

import numpy as np

from assistant.web import WebLimits, WebServer

log = logging.getLogger(__name__)

_MAX_QUEUED_FRAMES = 3  # per viewer; more means it cannot keep up: newer frames replace older
_STATS_KEPT = 2000


class WebScreen:
    """Serves the kiosk page on ``http://host:port/`` (``port=0``: any free port, see ``url``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, jpeg_quality: int = 80, max_width: int = 1280, *,
                 token: str = "", limits: WebLimits = WebLimits(), mic_port: int = 0, delay_ms: float = 80.0):
        self.jpeg_quality = jpeg_quality
        self.max_width = max_width
        self.mic_port = mic_port
        self.delay_ms = delay_ms
        self._cond = threading.Condition()
        self._frame: tuple[int, int, np.ndarray] | None = None  # (seq, t_ns, frame)
        self._seq = 0
        self._jpeg: tuple[int, int, bytes] = (-1, 0, b"")  # (seq, t_ns, jpeg)
        self._audio: tuple[str, bytes, int, int] = ("", b"", 0, 0)  # (id, wav, play_at_ns, rate)
        self._closed = False
        self._viewers: set = set()  # (ws, queue) pairs, touched on the server's loop only
        self.viewers_max = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self._page_stats: dict[str, list] = {"av_offset_ms": [], "audio_start_error_ms": [], "fps": [], "audio_starts": [], "looks": [], "delay_ms": [], "fps_talking_page": []}
        self._stats_lock = threading.Lock()
        self._page = resources.files("hardware").joinpath("kiosk.html").read_bytes()
        self.web = WebServer("kiosk page", self._routes, host=host, port=port, port_key="renderer.web_port", token=token, limits=limits)
        self.url = self.web.url
        self.web.start()
        self._encoder = threading.Thread(target=self._encode_loop, name="web-jpeg", daemon=True)
        self._encoder.start()
        log.info("kiosk page at %s", self.url)

    # --- from the renderer --------------------------------------------------------------------
    def show(self, frame: np.ndarray, t_ns: int) -> None:
        with self._cond:
            self._seq += 1
            self._frame = (self._seq, t_ns, frame)  # frames are new arrays per render: no copy needed
            self._cond.notify_all()

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        pcm16 = np.asarray(pcm, dtype="<i2")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm16.tobytes())
        uid = utterance_id or str(play_at_ns)
        with self._cond:
            self._audio = (uid, buf.getvalue(), play_at_ns, sample_rate)
        header = {"kind": "audio", "play_at_ms": play_at_ns / 1e6, "rate": sample_rate, "id": uid}
        self.web.call_soon(self._broadcast, _pack(header, pcm16.tobytes()), False)

    def silence_from(self, at_ns: int) -> None:
        """Barge-in: the pages stop the sound scheduled after ``at_ns`` and clear their frame queue."""
        self.web.call_soon(self._broadcast, json.dumps({"type": "stop", "at_ms": at_ns / 1e6}), False)

    def caption(self, who: str, text: str, partial: bool = False) -> None:
        """A line of the running transcript (``visitor`` or ``assistant``; partials are replaced by the final)."""
        self.web.call_soon(self._broadcast, json.dumps({"type": "caption", "who": who, "text": text, "partial": partial}), False)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.web.close()
        self._encoder.join(2.0)

    # --- frames -------------------------------------------------------------------------------
    def jpeg(self, wait_after: int = -1, timeout: float = 1.0) -> tuple[int, bytes]:
        """Latest frame as JPEG with its sequence number, waiting for one newer than ``wait_after``."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > wait_after or self._closed, timeout)
            latest, cached = self._frame, self._jpeg
        if latest is None:
            return -1, b""
        seq, t_ns, frame = latest
        if cached[0] == seq:
            return seq, cached[2]
        data = self._encode(frame)
        with self._cond:
            if seq > self._jpeg[0]:
                self._jpeg = (seq, t_ns, data)
        return seq, data

    def _encode(self, frame: np.ndarray) -> bytes:
        import cv2

        if frame.shape[1] > self.max_width:
            h = int(round(frame.shape[0] * self.max_width / frame.shape[1]))
            frame = cv2.resize(frame, (self.max_width, h), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return data.tobytes() if ok else b""

    def _encode_loop(self) -> None:
        """Encode each new frame once while someone watches, and hand it to every viewer."""
        sent = 0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._closed or (self._seq > sent and self._viewers), 0.5)
                if self._closed:
                    return
                if not self._viewers or self._frame is None or self._frame[0] <= sent:
                    continue
                seq, t_ns, frame = self._frame
            sent = seq
            data = self._encode(frame)
            if not data:
                continue
            with self._cond:
                if seq > self._jpeg[0]:
                    self._jpeg = (seq, t_ns, data)
            self.web.call_soon(self._broadcast, _pack({"kind": "frame", "t_ms": t_ns / 1e6, "seq": seq}, data), True)

    # --- the server's loop --------------------------------------------------------------------
    def _broadcast(self, message, droppable: bool) -> None:
        for _, queue in list(self._viewers):
            if droppable and queue.qsize() >= _MAX_QUEUED_FRAMES:
                self.frames_dropped += 1
                continue
            queue.put_nowait(message)
            if droppable:
                self.frames_sent += 1

    def _routes(self, app) -> None:
        from aiohttp import web

        async def page(request):
            return web.Response(body=self._page, content_type="text/html", charset="utf-8",
                                headers={"Content-Security-Policy": "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; "
                                         "style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; "
                                         "connect-src 'self' ws: wss:; media-src 'self' blob:; worker-src 'self' blob:"})

        async def config(request):
            return web.json_response({"mic_port": self.mic_port, "delay_ms": self.delay_ms})

        async def frame(request):
            seq, data = await request.loop.run_in_executor(None, self.jpeg, 0, 1.0)
            return web.Response(body=data, content_type="image/jpeg") if data else web.Response(status=503, text="no frame yet\n")

        async def state(request):
            return web.json_response(self.state())

        async def audio(request):
            wav = self._audio[1]
            return web.Response(body=wav, content_type="audio/wav") if wav else web.Response(status=404, text="no audio yet\n")

        async def stats(request):
            return web.json_response(self.page_stats())

        app.router.add_get("/", page)
        app.router.add_get("/index.html", page)
        app.router.add_get("/config.json", config)
        app.router.add_get("/frame.jpg", frame)
        app.router.add_get("/state.json", state)
        app.router.add_get("/audio.wav", audio)
        app.router.add_get("/stats.json", stats)
        app.router.add_get("/ws", self._viewer)

    async def _viewer(self, request):
        import asyncio

        from aiohttp import WSMsgType, web

        # No per-message deflate: JPEG and PCM do not shrink, and compressing costs CPU per viewer.
        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=1 << 16, compress=False)
        await ws.prepare(request)
        queue: asyncio.Queue = asyncio.Queue()
        entry = (ws, queue)
        with self._cond:
            self._viewers.add(entry)
            self.viewers_max = max(self.viewers_max, len(self._viewers))
            self._cond.notify_all()
        log.info("kiosk page: a viewer joined (%d watching)", len(self._viewers))

        async def sender():
            try:
                while not ws.closed:
                    msg = await queue.get()
                    if isinstance(msg, bytes):
                        await ws.send_bytes(msg)
                    else:
                        await ws.send_str(msg)
            except (ConnectionError, RuntimeError):
                pass  # the viewer went away mid-send (aiohttp's reset error is a ConnectionResetError)

        seq, t_ns, jpeg = self._jpeg
        if jpeg:  # something to show at once, before the next frame is drawn
            queue.put_nowait(_pack({"kind": "frame", "t_ms": t_ns / 1e6, "seq": seq}, jpeg))
        task = asyncio.ensure_future(sender())
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                if not isinstance(data, dict):
                    continue
                if data.get("type") == "ping":
                    # At once, not behind queued frames: the page's clock estimate depends on it.
                    try:
                        await ws.send_str(json.dumps({"type": "pong", "t": data.get("t"), "server_ms": time.monotonic_ns() / 1e6}))
                    except ConnectionError:
                        break
                elif data.get("type") == "stats":
                    self._take_stats(data)
        finally:
            task.cancel()
            with self._cond:
                self._viewers.discard(entry)
            log.info("kiosk page: a viewer left (%d watching)", len(self._viewers))
        return ws

    # --- what the pages measured --------------------------------------------------------------
    def _take_stats(self, data: dict) -> None:
        with self._stats_lock:
            for key in ("av_offset_ms", "audio_start_error_ms", "audio_starts"):
                values = data.get(key)
                if isinstance(values, list):
                    kept = self._page_stats[key]
                    kept.extend(v for v in values[:500] if isinstance(v, (int, float, list)))
                    del kept[:-_STATS_KEPT]
            looks = data.get("looks")
            if isinstance(looks, list) and len(looks) == 2 and all(isinstance(v, (int, float)) for v in looks):
                self._page_stats["looks"].append([float(looks[0]), float(looks[1])])
                del self._page_stats["looks"][:-_STATS_KEPT]
            for key in ("fps", "delay_ms"):
                value = data.get(key)
                if isinstance(value, (int, float)) and 0 <= value < 1e6:
                    self._page_stats[key].append(float(value))
                    del self._page_stats[key][:-_STATS_KEPT]
                    if key == "fps" and data.get("talking") is True:  # the page whose microphone is on (a kiosk's own screen, say)
                        self._page_stats["fps_talking_page"].append(float(value))
                        del self._page_stats["fps_talking_page"][:-_STATS_KEPT]

    def page_stats(self) -> dict:
        with self._stats_lock:
            return {key: list(values) for key, values in self._page_stats.items()} | {
                "viewers": len(self._viewers), "viewers_max": self.viewers_max,
                "frames_sent": self.frames_sent, "frames_dropped": self.frames_dropped}

    def state(self) -> dict:
        with self._cond:
            uid, _, play_at, _ = self._audio
            return {"frames": self._seq, "utterance_id": uid, "viewers": len(self._viewers),
                    "play_in_ms": (play_at - time.monotonic_ns()) / 1e6 if uid else 0.0}


def _pack(header: dict, payload: bytes) -> bytes:
    head = json.dumps(header).encode()
    return struct.pack("<I", len(head)) + head + payload
