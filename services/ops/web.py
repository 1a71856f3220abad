"""The status page's HTTP server: aiohttp behind the shared guards of ``assistant.web`` (Host
allow-list, Origin check, token, header timeout, connection cap).

Routes: ``/`` the page, ``/api/status`` its data as JSON, ``/preview.jpg`` the camera preview,
``/metrics`` Prometheus text, ``/healthz`` liveness. With a token every route needs it, as
``Authorization: Bearer TOKEN`` (Prometheus: ``authorization`` in the scrape config) or
``?token=TOKEN`` (a browser; the page passes it on to its own requests). The token is never logged.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Callable

from assistant.web import WebLimits, WebServer
from assistant.workers import Workers

from .board import StatusBoard

log = logging.getLogger(__name__)


class StatusServer:
    """Serves a ``StatusBoard`` on ``host:port`` from a worker of ``workers`` (a private one when none is given)."""

    def __init__(self, board: StatusBoard, host: str, port: int, token: str = "", on_request: Callable[[str], None] | None = None,
                 limits: WebLimits = WebLimits(), workers: Workers | None = None) -> None:
        self.board = board
        self.token = token
        self.on_request = on_request or (lambda route: None)
        self.page = resources.files(__package__).joinpath("page.html").read_bytes()
        self.web = WebServer("status page", self._routes, host=host, port=port, port_key="ops.port", token=token, limits=limits,
                             on_refused=lambda reason: self.on_request("unauthorised" if reason == "token" else "refused"), workers=workers)

    @property
    def url(self) -> str:
        return self.web.url

    def start(self) -> None:
        self.web.start()

    def close(self) -> None:
        self.web.close()

    def _routes(self, app) -> None:
        from aiohttp import web

        def route(path: str, make: Callable[[], "web.Response"]) -> None:
            async def handler(request):
                self.on_request(path)
                return make()

            app.router.add_get(path, handler)

        text = "text/plain"
        route("/", lambda: web.Response(body=self.page, content_type="text/html", charset="utf-8"))
        route("/api/status", lambda: web.Response(body=json.dumps(self.board.snapshot()).encode(), content_type="application/json"))
        route("/preview.jpg", self._preview)
        route("/metrics", lambda: web.Response(body=self.board.metrics().encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}))
        route("/healthz", lambda: web.Response(text="ok\n", content_type=text))

    def _preview(self):
        from aiohttp import web

        jpeg = self.board.preview()
        if jpeg is None:
            return web.Response(status=404, text="no camera preview yet\n")
        return web.Response(body=jpeg, content_type="image/jpeg")
