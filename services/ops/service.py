"""The ops service: feeds the status board from the bus and serves it (``assistant run ops``)."""

from __future__ import annotations

import logging

from assistant.messages import Received
from assistant.service import Service, on
from assistant.web import read_token, web_limits

from .board import WATCHED, StatusBoard
from .web import StatusServer

log = logging.getLogger(__name__)


class OpsService(Service):
    """Status page and Prometheus metrics on loopback."""

    name = "ops"

    def setup(self) -> None:
        cfg = self.config.ops
        self.board = StatusBoard(cfg.history, cfg.stale_after_s)
        self.server = self.hold(StatusServer(self.board, cfg.host, cfg.port, read_token(cfg.token_file),
                                             on_request=self._on_request, limits=web_limits(self.config), workers=self.workers))
        self.server.start()
        log.info("status page on %s (metrics on %smetrics)%s", self.server.url, self.server.url, " with a token" if self.server.token else "")

    def _on_request(self, route: str) -> None:
        # Runs on the web server's threads: ``count`` applies it on the loop, where the heartbeat reads counters.
        self.count({"unauthorised": "http_unauthorised", "refused": "http_refused"}.get(route, "http_requests"))

    @on(*WATCHED)
    def handle(self, rx: Received) -> None:
        self.board.ingest(rx)


main = OpsService.main

if __name__ == "__main__":
    raise SystemExit(main())
