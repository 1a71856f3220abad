"""The kiosk page's microphone: a browser's audio as a microphone of the hearing service.

``WebMicrophone`` listens on ``/mic`` (a WebSocket, behind the shared guards of ``assistant.web``)
for one talker at a time: 16 kHz mono int16 chunks from the page's microphone button or open-mic
mode, and ``{"type": "text"}`` lines from its text box (handed to ``on_text``). A second page that
wants to talk while one does gets ``{"type": "busy"}``; several pages may watch (that is the
renderer's page, not this).

Like every microphone it delivers a continuous 16 kHz stream, stamped on the kiosk's clock: a
capture clock of its own releases a chunk every ``chunk_ms`` once it is ``jitter_ms`` old, filled
from the talker's audio, and with the quiet room's low noise where nobody talks. Audio never
arrives from a browser as evenly as from a sound card (a busy page or network holds messages back,
then sends them in a burst), so the stream is an adaptive jitter buffer:

- a talker's audio that is late is waited for (up to ``max_hold_ms``): the stream pauses and then
  catches up with the burst, so speech is never cut by inserted noise nor by dropped samples; its
  stamps stay where the audio belongs (never in the future), and the wait shows in every measured
  latency;
- a talker who stops sending (``end``, gone, or silent past ``max_hold_ms``) is followed by the quiet
  room at once, in real time;
- audio that stays buffered longer than needed (a talker who started after a stall) is shortened
  in quiet stretches only (``quiet_dropped_ms``), never in speech; only a talker whose clock runs
  fast beyond ``max_buffer_ms`` loses the oldest excess samples (``overflow_samples``).
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
                 chunk_ms: int = 20, noise_dbfs: float = -70.0, jitter_ms: int = 20, max_hold_ms: int = 1000,
                 max_buffer_ms: int = 1000, quiet_dbfs: float = -50.0) -> None:
        super().__init__()
        self.chunk = int(RATE * chunk_ms / 1000)
        self.noise_rms = 32768.0 * 10 ** (noise_dbfs / 20)
        self._lock = threading.Lock()
        self._next_ns = 0  # the stream has been delivered up to here
        self._talker = None  # the WebSocket that talks now
        self.jitter_ns = jitter_ms * 1_000_000
        self.max_hold_ns = max_hold_ms * 1_000_000
        self.max_buffer = int(RATE * max_buffer_ms / 1000)
        self.quiet_rms = 32768.0 * 10 ** (quiet_dbfs / 20)
        self._buffer = np.zeros(0, np.int16)  # the talker's samples not yet delivered
        self._streaming = False  # a talker is connected and sending (not "end")
        self._levels: list[int] = []  # buffer level after each talker chunk, last second
        self.overflow_samples = 0
        self.holds = 0
        """Times the stream waited for a talker's late audio (a chunk or more)."""
        self.max_late_ms = 0.0
        """The longest the stream ran behind real time (waiting for a talker)."""
        self.quiet_dropped_ms = 0.0
        self.noise_in_talk_ms = 0.0
        """Quiet room put inside a talker's audio because it stopped or was later than ``max_hold_ms``."""
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
        """The capture clock: every half chunk period, deliver what is due (``_talk`` also delivers on arrival)."""
        period = self.chunk / RATE
        while not self._stop.wait(period / 2):
            self._deliver_due(time.monotonic_ns())

    @property
    def counters(self) -> dict[str, float]:
        """For the hearing service's heartbeat: how the jitter buffer coped with the browser's timing."""
        return {"web_mic_holds": self.holds, "web_mic_max_late_ms": round(self.max_late_ms, 1), "web_mic_noise_in_talk_ms": round(self.noise_in_talk_ms, 1),
                "web_mic_quiet_dropped_ms": round(self.quiet_dropped_ms, 1), "web_mic_overflow_samples": self.overflow_samples}

    def _deliver_due(self, now_ns: int) -> None:
        chunk_ns = self.chunk * NS // RATE
        with self._lock:
            while True:
                late = now_ns - self.jitter_ns - self._next_ns  # how far the stream is behind its real-time position
                if late < chunk_ns:
                    return  # nothing due yet: a chunk is released once all of it is jitter_ms old
                if len(self._buffer) < self.chunk and self._streaming and late - chunk_ns < self.max_hold_ns:
                    return  # the talker's audio is late: the stream waits for it (and catches up with the burst)
                take = self._buffer[:self.chunk]
                self._buffer = self._buffer[len(take):]
                if self._streaming and len(take) < self.chunk:
                    # Waited max_hold_ms in vain: the talker went quiet (or stalled too long); the room
                    # fills the rest of this chunk and the stream runs on in real time until it sends again.
                    if len(take):
                        self.noise_in_talk_ms += (self.chunk - len(take)) * 1000 / RATE
                    self._streaming = False
                self.max_late_ms = max(self.max_late_ms, (late - chunk_ns) / 1e6)
                pcm = (self._rng.standard_normal(self.chunk) * self.noise_rms).astype(np.int16)
                pcm[:len(take)] = take  # the talker's audio; the quiet room where there is none
                assert self._on_chunk is not None
                self._on_chunk(AudioChunk(pcm, self._next_ns))
                self._next_ns += chunk_ns

    def _talk(self, pcm: np.ndarray) -> None:
        """A chunk from the talker: into the jitter buffer, then out with whatever it completes."""
        now = time.monotonic_ns()
        with self._lock:
            self._streaming = True
            if now - self.jitter_ns - self._next_ns >= 2 * self.chunk * NS // RATE and len(self._buffer) < self.chunk:
                self.holds += 1  # the stream had been waiting for this message
            self._buffer = np.concatenate([self._buffer, pcm])
        if self._on_chunk is not None:
            self._deliver_due(now)
        with self._lock:
            if len(self._buffer) > self.max_buffer:  # still more than a second ahead of the stream: a fast clock
                self.overflow_samples += len(self._buffer) - self.max_buffer
                self._buffer = self._buffer[-self.max_buffer:]
            # What stays buffered once everything due went out: a standing surplus (more than the
            # burst pattern needs, for a whole second) is latency for nothing; shorten a quiet
            # stretch, never speech.
            self._levels = [*self._levels[-(RATE // self.chunk):], len(self._buffer)]
            if len(self._levels) > RATE // self.chunk and min(self._levels) >= 2 * self.chunk:
                head = self._buffer[:self.chunk].astype(np.float32)
                if float(np.sqrt(np.mean(head * head))) < self.quiet_rms:
                    self._buffer = self._buffer[self.chunk:]
                    self.quiet_dropped_ms += self.chunk * 1000 / RATE
                    self._levels = [lv - self.chunk for lv in self._levels]

    def _stream_end(self) -> None:
        """The talker let go or left: what it sent plays out, then the quiet room, in real time."""
        with self._lock:
            self._streaming = False
            self._levels = []

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
                self._stream_end()
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
            self._stream_end()
        elif kind == "text":
            text = data.get("text")
            if not isinstance(text, str) or not text.strip() or len(text) > _MAX_TEXT or any(ord(c) < 32 and c not in "\t" for c in text):
                self._bad("a text line that is empty, too long or has control characters")
                await ws.send_str(json.dumps({"type": "error", "error": f"say something in up to {_MAX_TEXT} characters"}))
                return
            self.texts += 1
            if self.on_text is None:  # nobody reads typed lines: counted, dropped
                return
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
