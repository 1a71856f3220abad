"""Threads the runtime owns: real-time work (capture, playback, decoding) off the event loop.

Every long-lived thread of a service is started through a ``Workers`` group, so one place starts,
stops and joins them. A ``Service`` has one (``Service.workers``): at shutdown it sets the
group's ``stopping`` event, closes the service's exit stack (the engines' ``close``, which wake
their workers) and joins what is left, within half of ``supervisor.stop_timeout_s``. An engine takes the
group it should use (``workers=``), and makes a private one when built alone (tests, benches):
the same code runs either way.

A worker never touches the loop's state: it hands what it found to the loop with
``Service.call_soon`` (the loop's thread-safe call), or publishes (``Service.publish`` is safe
from any thread). ``Service.count`` called from a worker goes through ``call_soon`` itself.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


class Workers:
    """A group of daemon threads started, stopped and joined together."""

    def __init__(self, name: str = "workers") -> None:
        self.name = name
        self.stopping = threading.Event()
        """Set when the group stops; a worker's loop may wait on it."""
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self, name: str, fn: Callable[..., Any], *args: Any) -> threading.Thread:
        """Run ``fn(*args)`` on a new thread named ``name``; an exception it lets out is logged."""
        thread = threading.Thread(target=self._guard, args=(name, fn, args), name=name, daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    @staticmethod
    def _guard(name: str, fn: Callable[..., Any], args: tuple) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - logged here, where the thread ends
            log.exception("worker %s failed", name)

    @property
    def alive(self) -> list[str]:
        """Names of the workers still running."""
        with self._lock:
            return [t.name for t in self._threads if t.is_alive()]

    def stop(self) -> None:
        """Tell every worker to end (``stopping`` is set); does not wait."""
        self.stopping.set()

    def join(self, timeout_s: float = 5.0) -> list[str]:
        """Wait up to ``timeout_s`` in all for the workers to end; returns the names still running."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            if thread is threading.current_thread():
                continue
            thread.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in threads if t.is_alive() and t is not threading.current_thread()]
        if left:
            # Daemon threads: the process still exits; a worker stuck in a blocking call (a TTS
            # request in a dropped TCP connection) is abandoned, not waited for.
            log.warning("%s: workers still running after %.1f s: %s", self.name, timeout_s, ", ".join(left))
        return left

    def close(self, timeout_s: float = 5.0) -> list[str]:
        """``stop`` then ``join``."""
        self.stop()
        return self.join(timeout_s)
