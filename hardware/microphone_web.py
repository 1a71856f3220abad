"""The kiosk page's microphone: a browser's audio as a microphone of the hearing service.

``WebMicrophone`` listens on ``/mic`` (a WebSocket, behind the shared guards of ``assistant.web``)
for one talker at a time: 16 kHz mono int16 chunks from the page's microphone button or open-mic
mode, and ``{"type": "text"}`` lines from its text box (handed to ``on_text``). A second page that
wants to talk while one does gets ``{"type": "busy"}``; several pages may watch (that is the
renderer's page, not this).

Like every microphone it delivers a continuous 16 kHz stream in real time, as a sound card does:
a capture clock of its own releases a chunk every ``chunk_ms``, filled from the talker's audio as
it arrived (through a small jitter buffer, ``jitter_ms``) and with the quiet room's low noise
where there is none. Timestamps therefore advance exactly with the kiosk's clock whatever the
network does (a burst after a stall never stamps audio in the future), the buffer's delay is part
of every measured latency, and the VAD's noise floor and end-of-speech timing work as for the
shotgun microphone. A talker whose clock runs fast loses the oldest excess samples (counted).
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


class WebMicrophone(Microphone):
    """The browser microphone on ``ws://host:port/mic`` (``port=0``: any free port)."""

    name = "web"

    def __init__(self, host: str = "127.0.0.1", port: int = 8781, *, token: str = "", limits: WebLimits = WebLimits(),
                 chunk_ms: int = 20, noise_dbfs: float = -70.0, jitter_ms: int = 40) -> None:
        super().__init__()
        self.chunk = int(RATE * chunk_ms / 1000)
        self.noise_rms = 32768.0 * 10 ** (noise_dbfs / 20)
        self.on_text: Callable[[str], None] = lambda text: None
        """Called (on the server's thread) with each line typed into the page's text box."""
        self._lock = threading.Lock()
        self._next_ns = 0  # the stream has been delivered up to here
        self._talker = None  # the WebSocket that talks now
        self.jitter_ns = jitter_ms * 1_000_000
        self._buffer = np.zeros(0, np.int16)  # the talker's samples not yet delivered
        self.overflow_samples = 0
        self._on_chunk: Callable[[AudioChunk], None] | None = None
        self._rng = np.random.default_rng(0)
        self.talkers = 0
        self.busy_refusals = 0
        self.texts = 0
        self.bad_messages = 0
        try:
            self.web = WebServer("browser microphone", self._routes, host=host, port=port, port_key="hearing.web_port", token=token, limits=limits)
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
        """The capture clock: every chunk period, deliver what is due (``jitter_ms`` behind real time)."""
        period = self.chunk / RATE
        while not self._stop.wait(period / 2):
            self._deliver_due(time.monotonic_ns())

    def _deliver_due(self, now_ns: int) -> None:
        chunk_ns = self.chunk * NS // RATE
        with self._lock:
            while now_ns - self.jitter_ns - self._next_ns >= chunk_ns:
                take = self._buffer[:self.chunk]
                self._buffer = self._buffer[len(take):]
                pcm = (self._rng.standard_normal(self.chunk) * self.noise_rms).astype(np.int16)
                pcm[:len(take)] = take  # the talker's audio; the quiet room where there is none
                assert self._on_chunk is not None
                self._on_chunk(AudioChunk(pcm, self._next_ns))
                self._next_ns += chunk_ns

    def _talk(self, pcm: np.ndarray) -> None:
        """A chunk from the talker: into the jitter buffer, which never holds more than 3 x ``jitter_ms``."""
        limit = max(self.chunk, int(3 * self.jitter_ns * RATE // NS))
        with self._lock:
            self._buffer = np.concatenate([self._buffer, pcm])
            if len(self._buffer) > limit:
                self.overflow_samples += len(self._buffer) - limit
                self._buffer = self._buffer[-limit:]

    # --- the server -----------------------------------------------------------------------
    def _routes(self, app) -> None:
        app.router.add_get("/mic", self._serve)

    async def _serve(self, request):
        from aiohttp import WSMsgType, web

        ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=_MAX_CHUNK * 2 + 1024, compress=False)
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
            pass  # the talker let go: what it sent plays out, then the quiet room
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
