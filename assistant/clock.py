"""A wall clock that does not jump: for retry, back-off and expiry times that must survive restarts.

Retries and expiries are measured with the monotonic clock. Times that are stored (a mail queued
before a reboot) need a wall-clock scale, since the monotonic clock restarts at boot; but the
system clock can be stepped (NTP after a dead RTC battery, an operator's ``date -s``). A
``SteadyClock`` reads the wall clock once and moves on with the monotonic clock from there, so a
step while the process runs changes nothing; stored times written under a wrong clock are
sanitised where they are read (``clamp_future``). Wall time proper is only for display and mail
``Date:`` headers.
"""

from __future__ import annotations

import time
from typing import Callable


class SteadyClock:
    """``time.time()``-like seconds anchored to the wall clock at start, advancing monotonically."""

    def __init__(self, wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic) -> None:
        self._mono = mono
        self._offset = wall() - mono()

    def __call__(self) -> float:
        return self._offset + self._mono()


def clamp_future(stored: float, now: float, horizon_s: float) -> float:
    """A stored time more than ``horizon_s`` ahead of ``now`` was written under a clock that has
    since been set back: treat it as ``now`` rather than waiting for it (possibly for a year)."""
    return now if stored - now > horizon_s else stored
