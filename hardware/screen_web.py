"""A web page on loopback that shows the live face (MJPEG) and plays its speech.

``/`` is the page, ``/stream.mjpg`` the live face as multipart JPEG, ``/frame.jpg`` the latest
frame, ``/state.json`` the frame count and latest utterance, ``/audio.wav`` the latest utterance's
sound (the page plays it at its ``play_at`` time). Each new frame is JPEG-encoded at most once,
and only while someone is watching, so an unwatched page costs nothing.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

log = logging.getLogger(__name__)

_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>assistant</title>
<style>html,body{margin:0;height:100%;background:#000}img{width:100%;height:100%;object-fit:contain}</style>
</head><body><img id="face" src="/stream.mjpg" alt="assistant face">
<audio id="voice"></audio>
<script>
// Plays each new utterance at its play_at time (browsers may need --autoplay-policy=no-user-gesture-required).
let last = "";
async function poll() {
  try {
    const s = await (await fetch("/state.json", {cache: "no-store"})).json();
    if (s.utterance_id && s.utterance_id !== last) {
      last = s.utterance_id;
      const a = document.getElementById("voice");
      a.src = "/audio.wav?u=" + encodeURIComponent(last);
      setTimeout(() => a.play().catch(() => {}), Math.max(0, s.play_in_ms));
    }
  } catch (e) {}
  setTimeout(poll, 200);
}
poll();
</script></body></html>
"""


class WebScreen:
    """Serves the live face on ``http://host:port/`` (``port=0``: any free port, see ``url``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, jpeg_quality: int = 80, max_width: int = 1280):
        if host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("web screen on %s is reachable from the network", host)
        self.jpeg_quality = jpeg_quality
        self.max_width = max_width
        self._cond = threading.Condition()
        self._frame: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._audio: tuple[str, bytes, int] = ("", b"", 0)
        self._closed = False
        screen = self

        class Handler(_Handler):
            owner = screen

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="web-screen", daemon=True)
        self._thread.start()
        log.info("web screen at %s", self.url)

    def show(self, frame: np.ndarray, t_ns: int) -> None:
        with self._cond:
            self._frame = frame  # frames are new arrays per render, so no copy is needed
            self._seq += 1
            self._cond.notify_all()

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
        with self._cond:
            self._audio = (utterance_id or str(play_at_ns), buf.getvalue(), play_at_ns)

    def jpeg(self, wait_after: int = -1, timeout: float = 1.0) -> tuple[int, bytes]:
        """Latest frame as JPEG with its sequence number, waiting for one newer than ``wait_after``."""
        import cv2

        with self._cond:
            self._cond.wait_for(lambda: self._seq > wait_after or self._closed, timeout)
            seq, frame, cached = self._seq, self._frame, self._jpeg
        if frame is None:
            return -1, b""
        if cached[0] == seq:
            return cached
        if frame.shape[1] > self.max_width:
            h = int(round(frame.shape[0] * self.max_width / frame.shape[1]))
            frame = cv2.resize(frame, (self.max_width, h), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        result = (seq, data.tobytes() if ok else b"")
        with self._cond:
            if result[0] > self._jpeg[0]:
                self._jpeg = result
        return result

    def state(self) -> dict:
        with self._cond:
            uid, _, play_at = self._audio
            return {"frames": self._seq, "utterance_id": uid,
                    "play_in_ms": (play_at - time.monotonic_ns()) / 1e6 if uid else 0.0}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    owner: WebScreen
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("web screen: " + fmt, *args)

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        owner = self.owner
        if path in ("/", "/index.html"):
            self._send(200, "text/html; charset=utf-8", _PAGE)
        elif path == "/frame.jpg":
            seq, data = owner.jpeg(wait_after=0)
            self._send(200, "image/jpeg", data) if data else self._send(503, "text/plain", b"no frame yet\n")
        elif path == "/state.json":
            self._send(200, "application/json", json.dumps(owner.state()).encode())
        elif path == "/audio.wav":
            _, wav, _ = owner._audio
            self._send(200, "audio/wav", wav) if wav else self._send(404, "text/plain", b"no audio yet\n")
        elif path == "/stream.mjpg":
            self._stream()
        else:
            self._send(404, "text/plain", b"not found\n")

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        seq = -1
        try:
            while not self.owner._closed:
                new, data = self.owner.jpeg(wait_after=seq)
                if new == seq or not data:
                    continue
                seq = new
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data))
                self.wfile.write(data + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the viewer went away
        self.close_connection = True
