"""Heartbeat watchdog for ``assistant up``: which children have stopped beating and must be killed.

systemd does this for production units (``WatchdogSec=`` and the ``WATCHDOG=1`` every heartbeat
sends from the service loop); ``assistant up`` does the equivalent from the heartbeats on the bus.
Heartbeats come from the service loop itself, so a loop that stalls (a handler stuck in a call
that never returns, a deadlock) stops them while the process stays alive.

Every heartbeat travels through the broker, so while the broker is down no service can be judged:
the bus is watched by its own heartbeat, and every other child gets a fresh ``timeout_s`` from the
moment the bus is heard again. Plain class, no ZeroMQ: the supervisor feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Watch:
    pid: int
    since: float  # when the current process started, or the bus came back: the grace starts here
    last_beat: float | None = None


class HeartbeatWatchdog:
    """Tracks the last heartbeat of each child process (by name and pid)."""

    def __init__(self, timeout_s: float, start_timeout_s: float, heartbeat_s: float = 1.0, bus: str = "bus") -> None:
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        #: The bus counts as heard while its last beat is younger than this.
        self.bus_fresh_s = 2.5 * heartbeat_s
        self.bus = bus
        self._watch: dict[str, _Watch] = {}
        self._bus_heard: float | None = None

    def started(self, name: str, pid: int, now: float) -> None:
        """A child process (re)started: it has ``start_timeout_s`` for its first heartbeat."""
        self._watch[name] = _Watch(pid, now)

    def stopped(self, name: str) -> None:
        self._watch.pop(name, None)

    def beat(self, name: str, pid: int, now: float) -> None:
        """A heartbeat arrived. Beats from another pid (an old process, a stray copy) do not count."""
        watch = self._watch.get(name)
        if name == self.bus:
            gap = now - self._bus_heard if self._bus_heard is not None else None
            if gap is None or gap > self.bus_fresh_s:
                # The bus is back (or heard for the first time): nobody could be heard before.
                for other, w in self._watch.items():
                    if other != self.bus:
                        w.since = max(w.since, now)
            self._bus_heard = now
        if watch is not None and watch.pid == pid:
            watch.last_beat = now

    def overdue(self, now: float) -> list[str]:
        """Children to kill: silent for ``timeout_s`` (``start_timeout_s`` before their first beat)."""
        if self.timeout_s <= 0:
            return []
        out = []
        bus = self._watch.get(self.bus)
        bus_silent = bus is not None and self._silent(bus, now)
        if bus_silent:
            out.append(self.bus)
        bus_fresh = self._bus_heard is not None and now - self._bus_heard <= self.bus_fresh_s
        if bus_fresh and not bus_silent:
            out += [n for n, w in self._watch.items() if n != self.bus and self._silent(w, now)]
        return out

    def _silent(self, w: _Watch, now: float) -> bool:
        if w.last_beat is None:
            return now - w.since > self.start_timeout_s
        return now - max(w.last_beat, w.since) > self.timeout_s
