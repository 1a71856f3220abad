"""``call_soon`` (and so a ``submit`` result) wakes the service loop at once, not at its next poll timeout."""

import statistics
import threading
import time

import msgspec

from assistant.config import Config
from assistant.service import Service


class _Idle(Service):
    name = "idle"


def test_call_soon_from_another_thread_runs_within_milliseconds(procs):
    procs.broker()
    svc = _Idle(msgspec.structs.replace(Config(), bus=procs.settings))
    loop = threading.Thread(target=svc.run, daemon=True)
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while svc.state != "ready":
            assert time.monotonic() < deadline, "service did not start"
            time.sleep(0.01)
        time.sleep(0.3)  # let the heartbeat timer settle: the loop now sleeps in its 100 ms poll
        delays = []
        for _ in range(10):
            ran = threading.Event()
            t0 = time.monotonic()
            svc.call_soon(ran.set)
            assert ran.wait(1)
            delays.append(time.monotonic() - t0)
            time.sleep(0.037)  # land at different points of the poll interval
        fut_done = threading.Event()
        t0 = time.monotonic()
        svc.submit(lambda: 42, then=lambda f: f.result() == 42 and fut_done.set())
        assert fut_done.wait(1)
        submit_delay = time.monotonic() - t0
    finally:
        svc.stop()
        loop.join(5)
    # Without the wake-up the median would be ~50 ms (half the 100 ms poll interval).
    assert statistics.median(delays) < 0.02 and submit_delay < 0.05, (delays, submit_delay)
    assert not loop.is_alive()
