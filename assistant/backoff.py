"""Back-off: how long to wait before the next try, from a schedule of delays whose last step repeats.

The one home for retry delays (the supervisor's restarts, the IMAP reconnects, the SMTP outbox,
the camera reopening a device). Every schedule is a tuple from the config (``*_backoff_s``), so
an operator sees and sets the delays. A library such as ``tenacity`` wraps a call in a retry
loop that sleeps; ours are schedules consulted by loops that must keep serving (a supervisor
watching other children, a mail store that retries a mail hours later), so they stay this small.
"""

from __future__ import annotations

from collections.abc import Sequence


def delay(steps: Sequence[float], failures: int, default: float = 1.0) -> float:
    """The wait after failure number ``failures + 1`` (0: the first): ``steps[failures]``, the last step past the end."""
    if not steps:
        return default
    return steps[min(max(failures, 0), len(steps) - 1)]


class Backoff:
    """Counts failures in a row and hands out the schedule's delays; ``reset()`` after a success."""

    def __init__(self, steps: Sequence[float], default: float = 1.0) -> None:
        self.steps = tuple(steps) or (default,)
        self.failures = 0

    def next(self) -> float:
        """The delay before the next try; counts one more failure."""
        wait = delay(self.steps, self.failures)
        self.failures += 1
        return wait

    def reset(self) -> None:
        self.failures = 0
