"""``assistant up``: run the bus and every enabled service as child processes, restarting crashes.

For development and the demo; production runs the same modules under systemd.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from assistant.config import Config

log = logging.getLogger(__name__)

#: Services known to this build: name -> module run with ``python -m``.
SERVICES: dict[str, str] = {
    "bus": "services.bus",
    "echo": "services.echo",
    "email": "services.email",
    "brain": "services.brain",
    "renderer": "services.renderer",
    "hearing": "services.hearing",
    "voice": "services.voice",
    "camera": "services.camera",
}

_STABLE_S = 60.0  # uptime after which a child's restart backoff starts again from the first step


def module_for(name: str) -> str:
    try:
        return SERVICES[name]
    except KeyError:
        known = ", ".join(sorted(SERVICES))
        raise ValueError(f"unknown service {name!r}; known services: {known}") from None


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    restarts: int = 0
    failures_in_row: int = 0
    next_start: float = 0.0
    exits: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, start_new_session=False)
        self.started = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.proc.pid)


class Supervisor:
    """Starts children, restarts the ones that die (with backoff), stops them all on request."""

    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.stop_event = threading.Event()
        extra = ["--config", config_path] if config_path else []
        names = ["bus", *[n for n in config.supervisor.services if n != "bus"]]
        self.children = [Child(n, [sys.executable, "-m", module_for(n), *extra]) for n in names]

    def _backoff(self, child: Child) -> float:
        steps = self.config.supervisor.restart_backoff_s or (1.0,)
        return steps[min(child.failures_in_row, len(steps)) - 1] if child.failures_in_row else 0.0

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        bus, *services = self.children
        bus.start()
        time.sleep(0.2)  # let the broker bind before the services connect (they retry anyway)
        for child in services:
            child.start()
        while not self.stop_event.wait(0.05):
            now = time.monotonic()
            for child in self.children:
                if child.proc is not None and child.proc.poll() is not None:
                    code = child.proc.returncode
                    child.exits.append(code)
                    uptime = now - child.started
                    child.failures_in_row = 1 if uptime > _STABLE_S else child.failures_in_row + 1
                    child.next_start = now + self._backoff(child)
                    log.warning("%s exited with %s after %.1f s; restarting in %.1f s", child.name, code, uptime, child.next_start - now)
                    child.proc = None
                if child.proc is None and now >= child.next_start:
                    child.restarts += 1
                    child.start()
        self._stop_all()
        return 0

    def _stop_all(self) -> None:
        """SIGTERM services first and the bus last, so their 'stopping' states still reach the bus."""
        timeout = self.config.supervisor.stop_timeout_s
        bus, *services = self.children
        for group in (services, [bus]):
            live = [c for c in group if c.proc is not None and c.proc.poll() is None]
            for child in live:
                child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for child in live:
                try:
                    child.proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("%s did not stop within %.1f s; killing it", child.name, timeout)
                    child.proc.kill()
                    child.proc.wait()
        log.info("all services stopped")


def run_service(name: str, argv: list[str]) -> int:
    """Run one service in this process (``assistant run NAME``)."""
    import importlib

    return importlib.import_module(module_for(name)).main(argv)
