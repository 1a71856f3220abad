"""The status page's HTTP server (stdlib ``http.server``, one thread per request).

Routes: ``/`` the page, ``/api/status`` its data as JSON, ``/preview.jpg`` the camera preview,
``/metrics`` Prometheus text, ``/healthz`` liveness. With a token every route needs it, as
``Authorization: Bearer TOKEN`` (Prometheus: ``authorization`` in the scrape config) or
``?token=TOKEN`` (a browser; the page passes it on to its own requests).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .board import StatusBoard

log = logging.getLogger(__name__)


class WebError(RuntimeError):
    """The status page cannot start; the message says what to fix."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StatusServer:
    """Serves a ``StatusBoard`` on ``host:port`` from a background thread."""

    def __init__(self, board: StatusBoard, host: str, port: int, token: str = "", on_request: Callable[[str], None] | None = None) -> None:
        if not is_loopback(host) and not token:
            raise WebError(f"the status page on non-loopback address {host!r} needs a token; set ops.token_file, or ops.host = \"127.0.0.1\"")
        self.board = board
        self.token = token
        self.on_request = on_request or (lambda route: None)
        self.page = resources.files(__package__).joinpath("page.html").read_bytes()
        handler = type("Handler", (_Handler,), {"server_ref": self})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise WebError(f"the status page cannot listen on {host}:{port}: {exc.strerror or exc}; pick another ops.port") from None
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="ops-web", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def authorised(self, headers, query: dict[str, list[str]]) -> bool:
        if not self.token:
            return True
        offered = ""
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered = auth[len("Bearer "):].strip()
        elif query.get("token"):
            offered = query["token"][0]
        return hmac.compare_digest(offered.encode(), self.token.encode())


class _Handler(BaseHTTPRequestHandler):
    server_ref: StatusServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server_ref
        url = urlsplit(self.path)
        if not srv.authorised(self.headers, parse_qs(url.query)):
            srv.on_request("unauthorised")
            self._send(401, "text/plain; charset=utf-8", b"a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
                       {"WWW-Authenticate": 'Bearer realm="assistant"'})
            return
        route = url.path
        srv.on_request(route)
        if route == "/":
            self._send(200, "text/html; charset=utf-8", srv.page)
        elif route == "/api/status":
            self._send(200, "application/json", json.dumps(srv.board.snapshot()).encode())
        elif route == "/preview.jpg":
            jpeg = srv.board.preview()
            if jpeg is None:
                self._send(404, "text/plain; charset=utf-8", b"no camera preview yet\n")
            else:
                self._send(200, "image/jpeg", jpeg)
        elif route == "/metrics":
            self._send(200, "text/plain; version=0.0.4; charset=utf-8", srv.board.metrics().encode())
        elif route == "/healthz":
            self._send(200, "text/plain; charset=utf-8", b"ok\n")
        else:
            self._send(404, "text/plain; charset=utf-8", b"not found\n")

    def _send(self, code: int, ctype: str, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        # The page shows visitors' words: no inline script from elsewhere, no framing.
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)
