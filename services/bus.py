"""The bus broker process: ``assistant run bus`` or ``python -m services.bus``."""

from __future__ import annotations

import logging
import os
import signal
import threading

import zmq

from assistant.bus import Broker
from assistant.messages import SystemState, encode
from assistant.service import Notifier, config_from_argv

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    config = config_from_argv("bus", "Run the ZeroMQ bus broker.", argv)
    if config is None:
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    notifier = Notifier()
    # Two I/O threads: CURVE decryption of what comes in and encryption of what goes out run side by side.
    broker = Broker(config.bus, zmq.Context(io_threads=2))
    try:
        broker.bind()
    except Exception as exc:  # noqa: BLE001 - one clear line for the operator
        log.error("bus broker cannot listen on %s / %s: %s", broker.endpoints.publish, broker.endpoints.subscribe, exc)
        return 1

    def tick() -> None:
        broker.heartbeat()
        notifier.notify("WATCHDOG=1")

    notifier.notify("READY=1")
    try:
        broker.run(stop.is_set, on_tick=tick, tick_s=config.service.heartbeat_s)
    finally:
        notifier.notify("STOPPING=1")
        assert broker.xpub is not None
        broker.xpub.send_multipart(encode(SystemState(service="bus", state="stopped", pid=os.getpid()), seq=0, source="bus"))
        broker.close()
    log.info("bus broker stopped (%s)", broker.counters())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
