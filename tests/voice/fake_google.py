"""A local stand-in for Google Translate's TTS endpoint, reached the way gTTS reaches Google.

gTTS sends its requests through the proxy named in ``https_proxy`` and does not verify TLS
certificates, so this server is an HTTPS proxy that answers the ``CONNECT`` itself: it
terminates TLS with a throw-away self-signed certificate and serves the ``batchexecute`` RPC
that gTTS speaks. The audio in the answers is real speech (espeak-ng) encoded as MP3, as
Google's is. Modes make it misbehave: ``hang`` (accepts, never answers, like a network that
drops packets), ``http500`` and ``garbage`` (200 with audio that is not MP3).
"""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import ssl
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for translate.google.com (openssl, ~50 ms)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=translate.google.com", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class FakeGoogle:
    """The proxy server; ``url`` goes into ``https_proxy``; ``requests`` lists (text, lang) received."""

    def __init__(self, folder: Path, speak) -> None:
        cert, key = make_certificate(folder)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.load_cert_chain(cert, key)
        self.speak = speak  # text -> (int16 pcm, rate)
        self.mode = "ok"
        self.requests: list[tuple[str, str]] = []
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_CONNECT(self):
                if outer.mode == "hang":
                    threading.Event().wait(30)  # never answers, like dropped packets
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.connection = outer.tls.wrap_socket(self.connection, server_side=True)
                self.rfile = self.connection.makefile("rb")
                self.wfile = self.connection.makefile("wb")
                self.close_connection = False
                while not self.close_connection:
                    self.handle_one_request()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                outer.paths.append(f"{self.headers.get('Host')}{self.path}")
                freq = urllib.parse.parse_qs(body)["f.req"][0]
                rpc = json.loads(freq)[0][0]
                text, lang = json.loads(rpc[1])[:2]
                outer.requests.append((text, lang))
                if outer.mode == "http500":
                    return self._reply(500, b"upstream broke")
                audio = b"\xff\xfbnot really mp3" * 50 if outer.mode == "garbage" else outer.mp3(text)
                b64 = base64.b64encode(audio).decode()
                inner = json.dumps([b64], separators=(",", ":"))
                line = json.dumps([["wrb.fr", "jQ1olc", inner, None, None, None, "generic"]], separators=(",", ":"))
                self._reply(200, f")]}}'\n\n{len(line)}\n{line}\n".encode())

            def _reply(self, code: int, payload: bytes):
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def mp3(self, text: str) -> bytes:
        """Real speech for ``text`` as 24 kHz MP3, like Google's answers."""
        pcm, rate = self.speak(text)
        audio = soxr.resample(pcm.astype(np.float32) / 32768, rate, 24000)
        buf = io.BytesIO()
        sf.write(buf, audio, 24000, format="MP3")
        return buf.getvalue()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def blackhole() -> tuple[socket.socket, str]:
    """A listening socket that accepts connections and never answers: a proxy URL that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def decode_google_lang(paths: list[str]) -> bool:
    """Whether every request went to translate.google.<tld> batchexecute (what gTTS would send)."""
    return all(re.match(r"translate\.google\.[a-z.]+(:443)?/_/TranslateWebserverUi/data/batchexecute", p)
               for p in paths)
