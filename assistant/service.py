"""The base every service stands on: lifecycle on the bus, heartbeats, systemd notify, clean stop.

A service is a thin handler over engines::

    class VoiceService(Service):
        name = "voice"

        def setup(self) -> None:            # open devices and engines (may block)
            self.engine = ...

        @on(Say)
        def handle_say(self, rx: Received) -> None:
            ...                              # quick; heavy work goes to self.submit()

        def teardown(self) -> None: ...

    if __name__ == "__main__":
        raise SystemExit(VoiceService.main())

The loop is single-threaded: handlers, timers and ``call_soon`` callbacks all run on it, so they
need no locks. ``publish`` and ``call_soon`` are safe from any thread; ``count`` from another
thread goes through ``call_soon``. SIGTERM and SIGINT stop the loop within a poll interval
(100 ms).

Real-time work (capture, playback, decoding loops) runs in workers the service owns
(``self.workers``, see ``assistant.workers``): ``start_worker`` starts one, and the engines the
service builds get the same group. Resources go on one exit stack (``self.resources``; ``hold``
puts an object's ``close`` there) as they are opened, so a setup that fails half-way releases
exactly what it opened. Shutdown: ``teardown()``, then the exit stack unwinds (last opened, first
closed), then the workers are joined, for at most half of ``supervisor.stop_timeout_s`` (the
grace before SIGKILL; the rest is for the final state on the bus).
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import gc
import heapq
import itertools
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, ClassVar, Iterable, TypeVar

import sdnotify
import zmq

from assistant.bus import BusClient, BusError
from assistant.config import Config, ConfigError, load
from assistant.errors import EXIT_SETUP, SetupError
from assistant.storefile import StoreFault
from assistant.workers import Workers
from assistant.messages import Command, Heartbeat, Message, Received, SystemState
from assistant.messages.system import State

log = logging.getLogger(__name__)


class _StoppedWhileDegraded(Exception):
    """SIGTERM while waiting for a store to come back: a clean stop."""


M = TypeVar("M", bound=Message)
T = TypeVar("T")
Handler = Callable[[Any, Received], None]

_POLL_MS = 100


def on(*types: type[Message]) -> Callable[[Handler], Handler]:
    """Mark a method as the handler of the given message types."""

    def mark(fn: Handler) -> Handler:
        fn.__handles__ = tuple(getattr(fn, "__handles__", ())) + types  # type: ignore[attr-defined]
        return fn

    return mark


def setup_logging(level: str = "info") -> None:
    """Log to stderr without timestamps (journald adds them)."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
        force=True,
    )


class Notifier:
    """systemd ``sd_notify``; a silent no-op when ``NOTIFY_SOCKET`` is unset."""

    def __init__(self) -> None:
        self._sd = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None

    def notify(self, state: str) -> None:
        if self._sd is not None:
            self._sd.notify(state)


class Service:
    """Base class of every bus service."""

    name: ClassVar[str] = "service"
    #: Extra topic prefixes to subscribe to besides the handled types (rarely needed).
    extra_topics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config) -> None:
        self.config = config
        self.started_ns = time.monotonic_ns()
        self.state: State = "starting"
        self.counters: dict[str, float] = {}
        self.bus: BusClient | None = None
        self._stop = threading.Event()
        self._notifier = Notifier()
        self._timers: list[tuple[float, int, float | None, Callable[[], None]]] = []
        self._timer_ids = itertools.count()
        self._soon: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # call_soon writes a byte here so the loop wakes at once instead of at its next poll timeout
        # (up to 100 ms later): a worker's result (submit's ``then``) must not wait for a timer.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._wake_lock = threading.Lock()  # a late worker's call_soon never writes to a closed (reused) fd
        self._wake_open = True
        self._pool: ThreadPoolExecutor | None = None
        self._loop_thread: int | None = None  # ident of the thread running the loop, once it runs
        self.workers = Workers(self.name)
        """The service's real-time workers; engines built in ``setup`` are given this group."""
        self.resources = contextlib.ExitStack()
        """What ``setup`` opened, closed in reverse order at shutdown (after ``teardown``)."""
        self._handlers: dict[type[Message], Callable[[Received], None]] = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr, None)
            for mtype in getattr(fn, "__handles__", ()):
                self._handlers[mtype] = getattr(self, attr)
        self._handlers.setdefault(Command, self._on_command)

    # --- hooks for subclasses -------------------------------------------------------------
    def setup(self) -> None:
        """Open devices and engines. Runs before ``ready``; may take a while."""

    def teardown(self) -> None:
        """Release what is not on ``self.resources`` (runs first, while the resources are still open)."""

    def heartbeat_counters(self) -> dict[str, float]:
        """Counters for the heartbeat; extend ``self.counters`` or override."""
        return self.counters

    # --- tools for subclasses -------------------------------------------------------------
    def publish(self, msg: Message, *, turn: str = "") -> None:
        """Publish on the bus; safe from any thread."""
        assert self.bus is not None, "publish() before the bus is connected"
        self.bus.publish(msg, turn=turn)

    def every(self, period_s: float, fn: Callable[[], None], *, first_in: float | None = None) -> None:
        """Call ``fn`` on the loop every ``period_s`` seconds."""
        due = time.monotonic() + (period_s if first_in is None else first_in)
        heapq.heappush(self._timers, (due, next(self._timer_ids), period_s, fn))

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        """Call ``fn`` on the loop once, after ``delay_s``."""
        heapq.heappush(self._timers, (time.monotonic() + delay_s, next(self._timer_ids), None, fn))

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread at its next turn; safe from any thread."""
        self._soon.put(fn)
        with self._wake_lock:
            if not self._wake_open:
                return  # shut down: nothing runs it any more
            try:
                os.write(self._wake_w, b"\0")
            except (BlockingIOError, OSError):
                pass  # pipe full: the loop is already due to wake

    def submit(self, fn: Callable[..., Any], *args: Any, then: Callable[[Future], None] | None = None) -> Future:
        """Run blocking work on a worker thread; ``then(future)`` runs back on the loop."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=self.name)
        fut = self._pool.submit(fn, *args)
        if then is not None:
            fut.add_done_callback(lambda f: self.call_soon(lambda: then(f)))
        return fut

    def start_worker(self, name: str, fn: Callable[..., Any], *args: Any) -> threading.Thread:
        """Run a real-time loop ``fn(*args)`` on a worker the service stops and joins at shutdown.

        The loop should end when ``self.workers.stopping`` is set (at the start of shutdown); it
        hands results to the loop with ``call_soon``. Its join goes on the exit stack, so what was
        opened before it (the device it reads) is closed only after it has ended.
        """
        thread = self.workers.start(f"{self.name}-{name}", fn, *args)
        self.resources.callback(thread.join, self.config.supervisor.stop_timeout_s / 2)
        return thread

    def hold(self, resource: T, close: Callable[[], Any] | None = None) -> T:
        """Put ``resource`` on the exit stack (its ``close()``, or ``close``); returns it."""
        self.resources.callback(close if close is not None else resource.close)  # type: ignore[attr-defined]
        return resource

    def until_available(self, fn: Callable[[], Any], retry_s: float = 2.0) -> Any:
        """Call ``fn`` (opening a store, say) until it stops raising ``StoreFault``; return its result.

        Meanwhile the service is ``degraded``: it says why once, keeps its heartbeats (the status
        page and the watchdogs see it alive) and tries again every ``retry_s``. A full disk or a
        locked database is a fault of the moment, not a config error: exiting with code 2 would
        keep it down after the space is freed.
        """
        degraded_at = None
        while True:
            try:
                result = fn()
            except StoreFault as exc:
                self.count("store_faults")
                if degraded_at is None:
                    degraded_at = time.monotonic()
                    log.error("%s; %s is degraded and tries again every %.0f s", exc, self.name, retry_s)
                    self._set_state("degraded", str(exc))
                    self._notifier.notify("READY=1")
                    self._notifier.notify(f"STATUS=degraded: {exc}")
                self._heartbeat()
                if self._stop.wait(retry_s):
                    raise _StoppedWhileDegraded() from None
                continue
            if degraded_at is not None:
                log.info("%s recovered after %.0f s", self.name, time.monotonic() - degraded_at)
                self._set_state("starting")
            return result

    def count(self, key: str, n: float = 1) -> None:
        """Add ``n`` to counter ``key``; from a thread other than the loop's, on the loop (``call_soon``)."""
        if self._loop_thread is not None and threading.get_ident() != self._loop_thread:
            self.call_soon(lambda: self.count(key, n))
            return
        self.counters[key] = self.counters.get(key, 0) + n

    def stop(self) -> None:
        """Ask the loop to stop (safe from signal handlers and other threads)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the loop -----------------------------------------------------------------------
    def topics(self) -> Iterable[str]:
        return [t.TYPE for t in self._handlers] + list(self.extra_topics)

    def _set_state(self, state: State, detail: str = "") -> None:
        self.state = state
        if self.bus is not None:
            try:
                self.publish(SystemState(service=self.name, state=state, pid=os.getpid(), detail=detail))
            except Exception:  # noqa: BLE001 - the bus going away must not stop a clean shutdown
                log.debug("could not publish state %s", state, exc_info=True)

    def _heartbeat(self) -> None:
        assert self.bus is not None
        counters = {
            "in": self.bus.sub.stats.received,
            "out": self.bus.pub.sent,
            "malformed": self.bus.sub.stats.malformed + self.bus.sub.stats.unknown,
            "gaps": self.bus.sub.gaps,
            # Broker outages ridden out, and messages dropped because more than hold_max piled up meanwhile.
            "bus_outages": self.bus.pub.outages,
            "bus_held_dropped": self.bus.pub.lost,
            **self.heartbeat_counters(),
        }
        self.publish(Heartbeat(service=self.name, state=self.state, pid=os.getpid(), started_ns=self.started_ns, counters=counters))
        self._notifier.notify("WATCHDOG=1")

    def _on_command(self, rx: Received) -> None:
        cmd = rx.msg
        assert isinstance(cmd, Command)
        if cmd.service not in (self.name, "*"):
            return
        if cmd.command == "stop":
            log.info("stop requested on the bus by %s", rx.header.source)
            self.stop()
        elif cmd.command == "hang":
            # For watchdog tests: stall the loop as a hung service would.
            if os.environ.get("ASSISTANT_ALLOW_HANG") == "1":
                time.sleep(float(cmd.args.get("seconds", "3600")))
        else:
            log.warning("unknown command %r for %s", cmd.command, self.name)

    def _dispatch(self, rx: Received) -> None:
        handler = self._handlers.get(type(rx.msg))
        if handler is None:
            return
        try:
            handler(rx)
        except Exception:  # noqa: BLE001 - a handler bug must not kill the service
            self.count("handler_errors")
            log.error("handler for %s failed:\n%s", rx.msg.TYPE, traceback.format_exc())

    def _run_timers(self) -> float:
        """Run due timers; return seconds until the next one."""
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            due, _, period, fn = heapq.heappop(self._timers)
            if period is not None:
                heapq.heappush(self._timers, (max(due + period, now), next(self._timer_ids), period, fn))
            try:
                fn()
            except Exception:  # noqa: BLE001
                self.count("timer_errors")
                log.error("timer %s failed:\n%s", getattr(fn, "__name__", fn), traceback.format_exc())
        return (self._timers[0][0] - time.monotonic()) if self._timers else _POLL_MS / 1000

    def run(self) -> int:
        """Run until stopped. Returns the process exit code."""
        self._install_signals()
        self._loop_thread = threading.get_ident()
        try:
            self.bus = BusClient(self.config.bus, self.name, self.topics())
            self.bus.wait_live()
            self._set_state("starting")
            self.setup()
        except BusError as exc:
            log.error("%s", exc)
            self._shutdown("failed", str(exc))
            return 1
        except _StoppedWhileDegraded:
            self._shutdown("stopped")
            return 0
        except SetupError as exc:
            log.error("%s cannot start: %s", self.name, exc)
            self._shutdown("failed", str(exc))
            return EXIT_SETUP
        except Exception as exc:  # noqa: BLE001 - report any start-up failure in one place
            log.error("%s failed to start: %s", self.name, exc)
            log.debug("start-up failure", exc_info=True)
            self._shutdown("failed", str(exc))
            return 1
        # Move everything built at start-up (modules, models, engines) out of the collector's
        # reach, so full collections stay short and do not add tail latency to the loop.
        gc.freeze()
        self.every(self.config.service.heartbeat_s, self._heartbeat, first_in=0)
        self._set_state("ready")
        self._notifier.notify("READY=1")
        log.info("%s ready", self.name)
        sock = self.bus.sub.sock
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        while not self._stop.is_set():
            self.bus.pub.maintain()  # after a broker restart: send what was held meanwhile
            wait = self._run_timers()
            while True:
                try:
                    self._soon.get_nowait()()
                except queue.Empty:
                    break
                except Exception:  # noqa: BLE001
                    self.count("callback_errors")
                    log.error("callback failed:\n%s", traceback.format_exc())
            while self.bus.sub.pending:
                self._dispatch(self.bus.sub.pending.popleft())
            timeout = int(max(0.0, min(wait, _POLL_MS / 1000)) * 1000)
            ready = dict(poller.poll(timeout))
            if self._wake_r in ready:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            if sock in ready:
                # Drain what is waiting, but come back to timers at least every 50 messages.
                for _ in range(50):
                    rx = self.bus.sub.recv_ready()
                    if rx is not None:
                        self._dispatch(rx)
                    if not sock.poll(0):
                        break
        self._shutdown("stopped")
        return 0

    def _shutdown(self, final_state: State, detail: str = "") -> None:
        self._notifier.notify("STOPPING=1")
        self._set_state("stopping", detail)
        self.workers.stop()
        try:
            self.teardown()
        except Exception:  # noqa: BLE001
            log.error("teardown failed:\n%s", traceback.format_exc())
        try:
            self.resources.close()
        except Exception:  # noqa: BLE001 - ExitStack closes the rest before re-raising
            log.error("releasing resources failed:\n%s", traceback.format_exc())
        self.workers.join(self.config.supervisor.stop_timeout_s / 2)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._set_state(final_state, detail)
        if self.bus is not None:
            self.bus.close()
        with self._wake_lock:
            self._wake_open = False
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        log.info("%s %s", self.name, final_state)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop())

    # --- entry point ------------------------------------------------------------------------
    @classmethod
    def main(cls, argv: list[str] | None = None) -> int:
        """``python -m services.<name> [--config FILE]``."""
        config = config_from_argv(cls.name, (cls.__doc__ or "").strip().split("\n")[0], argv)
        if config is None:
            return 2
        return cls(config).run()


def config_from_argv(name: str, description: str, argv: list[str] | None) -> Config | None:
    """Parse ``--config``, load and validate it, set up logging; ``None`` (after one line on stderr) if invalid."""
    parser = argparse.ArgumentParser(prog=f"assistant run {name}", description=description or None)
    parser.add_argument("--config", help="TOML config file (default: /etc/assistant/assistant.toml if present)")
    args = parser.parse_args(argv)
    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"assistant: config error: {exc}", file=sys.stderr)
        return None
    setup_logging(config.service.log_level)
    # A watchdog kill (systemd's WatchdogSignal, or `assistant up`) is SIGABRT: print every
    # thread's stack first, so the log shows where the loop hung.
    faulthandler.enable()
    return config
