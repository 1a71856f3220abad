"""``assistant up``: run the bus and every enabled service as child processes, restarting crashes.

For development and the demo; production runs the same modules under systemd. Like systemd's
``WatchdogSec=``, a child whose heartbeats stop (its loop hangs) is killed and restarted
(``assistant.watchdog``).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from assistant import backoff
from assistant.config import Config
from assistant.errors import EXIT_SETUP
from assistant.watchdog import HeartbeatWatchdog

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
    "ops": "services.ops",
}

#: CPU priority (nice) per service, as the systemd units set it (``Nice=``): the live audio path
#: first. On a loaded kiosk the hearing service must not fall behind the microphone (its end of
#: speech -> transcript time is what a visitor waits for); the camera, mail and ops work can wait a
#: few ms. The voice and the face are the two outputs a visitor times against each other (sound
#: and mouth within 40 ms), so the renderer gets the voice's priority. A negative value needs privileges (root, CAP_SYS_NICE or RLIMIT_NICE); without them the
#: service runs at the supervisor's own priority and the others still yield to it.
NICE: dict[str, int] = {"hearing": -5, "voice": -2, "renderer": -2, "camera": 5, "email": 10, "ops": 10}

_STABLE_S = 60.0  # uptime after which a child's restart backoff starts again from the first step


def module_for(name: str) -> str:
    try:
        return SERVICES[name]
    except KeyError:
        known = ", ".join(sorted(SERVICES))
        raise ValueError(f"unknown service {name!r}; known services: {known}") from None


def set_nice(name: str) -> None:
    """In the child before exec: the CPU priority ``NICE`` gives the service (best effort)."""
    delta = NICE.get(name, 0)
    if delta:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + delta)
        except OSError:  # raising priority without the right: keep the current one
            pass


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when ``assistant up`` dies, even of SIGKILL, so no
    service outlives its supervisor (Linux ``PR_SET_PDEATHSIG``; elsewhere a no-op)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


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
    abort_sent: float | None = None  # when the watchdog sent SIGABRT to the current process

    def start(self) -> None:
        # A process group of its own: Ctrl-C in the terminal reaches only the supervisor, which then
        # stops the services first and the bus last (a group-wide SIGINT stopped the bus with them,
        # and every service logged that it had lost the broker). PR_SET_PDEATHSIG still ends the
        # children if the supervisor dies.
        def before_exec() -> None:
            set_nice(self.name)
            _die_with_parent()

        self.proc = subprocess.Popen(self.argv, process_group=0, preexec_fn=before_exec)
        self.started = time.monotonic()
        self.abort_sent = None
        log.info("started %s (pid %d)", self.name, self.proc.pid)


class Supervisor:
    """Starts children, restarts the ones that die (with backoff), stops them all on request."""

    def __init__(self, config: Config, config_path: str | None) -> None:
        self.config = config
        self.stop_event = threading.Event()
        extra = ["--config", config_path] if config_path else []
        names = ["bus", *[n for n in config.supervisor.services if n != "bus"]]
        self.children = [Child(n, [sys.executable, "-m", module_for(n), *extra]) for n in names]
        sup = config.supervisor
        self.watchdog = HeartbeatWatchdog(sup.watchdog_s, sup.start_timeout_s, config.service.heartbeat_s)
        self.hung_kills = 0

    def _backoff(self, child: Child) -> float:
        if not child.failures_in_row:
            return 0.0
        return backoff.delay(self.config.supervisor.restart_backoff_s, child.failures_in_row - 1)

    def _start(self, child: Child) -> None:
        child.start()
        assert child.proc is not None
        self.watchdog.started(child.name, child.proc.pid, child.started)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        bus, *services = self.children
        self._start(bus)
        time.sleep(0.2)  # let the broker bind before the services connect (they retry anyway)
        for child in services:
            self._start(child)
        beats = self._heartbeats()
        try:
            while not self.stop_event.wait(0.05):
                now = time.monotonic()
                self._read_heartbeats(beats)
                self._watch(now)
                for child in self.children:
                    self._reap(child, now)
        finally:
            beats.close()
        self._stop_all()
        return 0

    def _heartbeats(self):
        """A bus subscription to heartbeats (no round trip: it connects whenever the broker is up)."""
        from assistant.bus import BusClient
        from assistant.messages import Heartbeat

        return BusClient(self.config.bus, "supervisor", [Heartbeat.TYPE])

    def _read_heartbeats(self, beats) -> None:
        while (rx := beats.sub.recv_wire(0)) is not None:
            msg = rx.msg
            self.watchdog.beat(msg.service, msg.pid, time.monotonic())

    def _watch(self, now: float) -> None:
        """Kill children whose heartbeats stopped: SIGABRT first (faulthandler logs the stack), then SIGKILL."""
        grace = self.config.supervisor.kill_grace_s
        by_name = {c.name: c for c in self.children}
        for name in self.watchdog.overdue(now):
            child = by_name.get(name)
            if child is None or child.proc is None or child.abort_sent is not None:
                continue
            log.error("%s (pid %d) sent no heartbeat for %.1f s: its loop is hung; killing it", name, child.proc.pid, self.config.supervisor.watchdog_s)
            child.proc.send_signal(signal.SIGABRT)
            child.abort_sent = now
            self.hung_kills += 1
        for child in self.children:
            if child.proc is not None and child.abort_sent is not None and now - child.abort_sent > grace and child.proc.poll() is None:
                child.proc.kill()

    def _reap(self, child: Child, now: float) -> None:
        if child.proc is not None and child.proc.poll() is not None:
            code = child.proc.returncode
            child.exits.append(code)
            uptime = now - child.started
            child.failures_in_row = 1 if uptime > _STABLE_S else child.failures_in_row + 1
            child.proc = None
            if code == EXIT_SETUP:
                # It cannot run as configured (its own line above says why): restarting cannot help.
                child.next_start = math.inf
                log.error("%s cannot run as configured (see its error above); not restarting it until "
                          "the setting is fixed and assistant up is restarted", child.name)
            else:
                child.next_start = now + self._backoff(child)
                log.warning("%s exited with %s after %.1f s; restarting in %.1f s", child.name, code, uptime, child.next_start - now)
            self.watchdog.stopped(child.name)
        if child.proc is None and now >= child.next_start:
            child.restarts += 1
            self._start(child)

    def _stop_all(self) -> None:
        """SIGTERM services first and the bus last, so their 'stopping' states still reach the bus."""
        timeout = self.config.supervisor.stop_timeout_s
        bus, *services = self.children
        for group in (services, [bus]):
            live = [(c, c.proc) for c in group if c.proc is not None and c.proc.poll() is None]
            for _, proc in live:
                proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            for child, proc in live:
                try:
                    proc.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.error("%s did not stop within %.1f s; killing it", child.name, timeout)
                    proc.kill()
                    proc.wait()
        log.info("all services stopped")


def run_service(name: str, argv: list[str]) -> int:
    """Run one service in this process (``assistant run NAME``), exactly as ``python -m services.NAME``
    would: the module (or the package's ``__main__``) runs as ``__main__`` with ``argv``."""
    import runpy

    module = module_for(name)
    saved = sys.argv
    sys.argv = [module, *argv]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    finally:
        sys.argv = saved
    return 0
