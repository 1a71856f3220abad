"""The kiosk page's microphone: a browser's audio as a microphone of the hearing service.

``WebMicrophone`` listens on ``/mic`` (a WebSocket, behind the shared guards of ``assistant.web``)
for one talker at a time: 16 kHz mono int16 chunks from the page's microphone button or open-mic
mode, and ``{"type": "text"}`` lines from its text box (handed to ``on_text``). A second page that
wants to talk while one does gets ``{"type": "busy"}``; several pages may watch (that is the
renderer's page, not this).

Like every microphone it delivers a continuous 16 kHz stream in real time: the talker's audio
when it arrives, stamped with its arrival time, and the quiet room's low noise in between (so the
VAD's noise floor and end-of-speech timing work as for the shotgun microphone).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Callable

import numpy as np

from assistant.web import WebLimits, WebServer

from .microphone import RATE, AudioChunk, Microphone, MicrophoneError

log = logging.getLogger(__name__)

NS = 1_000_000_000
_MAX_CHUNK = RATE * 2  # samples per message: a page sends 20 ms; more than 2 s is not a microphone
_MAX_TEXT = 2000
_TALK_LAG_NS = 60_000_000  # while a talker streams, the quiet filler stays this far behind (network jitter)


class WebMicrophone(Microphone):
    """The browser microphone on ``ws://host:port/mic`` (``port=0``: any free port)."""

    name = "web"

    def __init__(self, host: str = "127.0.0.1", port: int = 8781, *, token: str = "", limits: WebLimits = WebLimits(),
                 chunk_ms: int = 20, noise_dbfs: float = -70.0, token_key: str = "ops.token_file") -> None:
        super().__init__()
        self.chunk = int(RATE * chunk_ms / 1000)
        self.noise_rms = 32768.0 * 10 ** (noise_dbfs / 20)
        self.on_text: Callable[[str], None] = lambda text: None
        """Called (on the server's thread) with each line typed into the page's text box."""
        self._lock = threading.Lock()
        self._next_ns = 0  # the stream has been delivered up to here
        self._talker = None  # the WebSocket that talks now
        self._talk_until_ns = 0  # while its audio flows, the filler lags behind
        self._on_chunk: Callable[[AudioChunk], None] | None = None
        self._rng = np.random.default_rng(0)
        self.talkers = 0
        self.busy_refusals = 0
        self.texts = 0
        self.bad_messages = 0
        try:
            self.web = WebServer("browser microphone", self._routes, host=host, port=port, token=token, limits=limits,
                                 token_key=token_key)
        except Exception as exc:  # noqa: BLE001 - WebError or a missing aiohttp: the same advice
            raise MicrophoneError(f"{exc} (hearing.web_host / hearing.web_port)") from None
        self.port = self.web.port

    # --- the Microphone interface -------------------------------------------------------------
    def start(self, on_chunk: Callable[[AudioChunk], None]) -> None:
        self._on_chunk = on_chunk
        with self._lock:
            self._next_ns = time.monotonic_ns()
        self.web.start()
        log.info("browser microphone on ws://%s:%d/mic", self.web.url.split("//")[1].rsplit(":", 1)[0], self.port)
        super().start(on_chunk)

    def stop(self, timeout: float = 2.0) -> None:
        super().stop(timeout)
        self.web.close()

    @property
    def talking(self) -> bool:
        return self._talker is not None

    def _run(self, on_chunk: Callable[[AudioChunk], None]) -> None:
        """The quiet room between the talker's words, in real time."""
        period = self.chunk / RATE
        while not self._stop.wait(period):
            now = time.monotonic_ns()
            with self._lock:
                lag = _TALK_LAG_NS if now < self._talk_until_ns else 0
                self._fill_to(now - lag)

    def _fill_to(self, until_ns: int) -> None:
        """Deliver quiet from where the stream is to ``until_ns`` (under the lock)."""
        assert self._on_chunk is not None
        while until_ns - self._next_ns >= self.chunk * NS // RATE:
            noise = (self._rng.standard_normal(self.chunk) * self.noise_rms).astype(np.int16)
            self._on_chunk(AudioChunk(noise, self._next_ns))
            self._next_ns += self.chunk * NS // RATE

    def _talk(self, pcm: np.ndarray) -> None:
        """A chunk from the talker: it was captured just before it arrived."""
        now = time.monotonic_ns()
        dur = len(pcm) * NS // RATE
        with self._lock:
            start = now - dur
            if start > self._next_ns:
                self._fill_to(start)  # a gap before it (the talk began, or the network paused): quiet
            start = self._next_ns  # contiguous with what was delivered: the stream never overlaps itself
            self._talk_until_ns = now + 200_000_000
            if self._on_chunk is not None:
                self._on_chunk(AudioChunk(pcm, start))
            self._next_ns = start + dur

    # --- the server -----------------------------------------------------------------------
    def _routes(self, app) -> None:
        app.router.add_get("/mic", self._serve)

    async def _serve(self, request):
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=_MAX_CHUNK * 2 + 1024)
        await ws.prepare(request)
        if self._talker is not None and not self._talker.closed:
            self.busy_refusals += 1
            await ws.send_str(json.dumps({"type": "busy"}))
            await ws.close()
            return ws
        self._talker = ws
        self.talkers += 1
        log.info("browser microphone: a talker connected")
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    data = msg.data
                    if len(data) % 2 or not data or len(data) > _MAX_CHUNK * 2:
                        self._bad(f"audio message of {len(data)} bytes (expected 16 kHz int16, up to 2 s)")
                        continue
                    self._talk(np.frombuffer(data, dtype="<i2").astype(np.int16))
                elif msg.type == WSMsgType.TEXT:
                    await self._command(ws, msg.data)
        finally:
            if self._talker is ws:
                self._talker = None
                with self._lock:
                    self._talk_until_ns = 0
            log.info("browser microphone: the talker left")
        return ws

    async def _command(self, ws, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._bad("a text message that is not a JSON object")
            return
        kind = data.get("type")
        if kind == "end":
            with self._lock:
                self._talk_until_ns = 0  # the talker let go: the quiet catches up at once
        elif kind == "text":
            text = data.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > _MAX_TEXT or any(ord(c) < 32 and c not in "\t" for c in text):
                self._bad("a text line that is empty, too long or has control characters")
                await ws.send_str(json.dumps({"type": "error", "error": f"say something in up to {_MAX_TEXT} characters"}))
                return
            self.texts += 1
            try:
                self.on_text(text.strip())
            except Exception:  # noqa: BLE001 - a failing consumer must not close the talker's connection
                log.exception("typed line not delivered")
        else:
            self._bad(f"unknown message type {str(kind)[:40]!r}")

    def _bad(self, what: str) -> None:
        self.bad_messages += 1
        if self.bad_messages == 1:
            log.warning("browser microphone: ignored %s (counted from now on)", what)
