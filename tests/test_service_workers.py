"""The runtime's worker facility: workers started, stopped and joined by the service; one exit
stack released in reverse order; counters from workers land on the loop."""

import threading
import time

import msgspec

from assistant.config import Config
from assistant.service import Service
from assistant.workers import Workers


class _Closing:
    def __init__(self, name: str, log: list[str]):
        self.name, self.log = name, log

    def close(self) -> None:
        self.log.append(self.name)


class _Capture(Service):
    """A capture-like loop on a worker that counts from its own thread."""

    name = "capture"

    def setup(self) -> None:
        self.closed: list[str] = []
        self.hold(_Closing("device", self.closed))
        self.hold(_Closing("engine", self.closed))
        self.seen_threads: set[int] = set()
        self.start_worker("loop", self._loop)

    def _loop(self) -> None:
        while not self.workers.stopping.wait(0.005):
            self.count("frames")  # from the worker: must be applied on the loop
            self.call_soon(lambda: self.seen_threads.add(threading.get_ident()))

    def teardown(self) -> None:
        self.closed.append("teardown")


def _run_until(svc: Service, ready, timeout=20.0) -> threading.Thread:
    loop = threading.Thread(target=svc.run, daemon=True)
    loop.start()
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "service did not get there"
        time.sleep(0.01)
    return loop


def test_workers_are_stopped_joined_and_resources_closed_in_reverse(procs):
    procs.broker()
    svc = _Capture(msgspec.structs.replace(Config(), bus=procs.settings))
    loop = _run_until(svc, lambda: svc.counters.get("frames", 0) >= 20)
    try:
        assert svc.workers.alive == ["capture-loop"]
        loop_ident = svc._loop_thread
    finally:
        svc.stop()
        loop.join(5)
    assert not loop.is_alive()
    assert svc.workers.alive == []  # joined at shutdown
    assert svc.closed == ["teardown", "engine", "device"]  # teardown first, then last opened first
    assert svc.seen_threads == {loop_ident}  # what workers handed over ran on the loop thread


def test_count_from_a_worker_goes_through_the_loop():
    svc = Service(Config())
    svc._loop_thread = threading.get_ident()  # as run() sets it
    t = threading.Thread(target=svc.count, args=("x",))
    t.start()
    t.join()
    assert "x" not in svc.counters  # not touched from the other thread
    svc._soon.get_nowait()()  # the loop's next turn
    assert svc.counters["x"] == 1
    svc.count("x")  # on the loop thread: at once
    assert svc.counters["x"] == 2


def test_a_failing_worker_is_logged_and_a_stuck_one_is_reported(caplog):
    workers = Workers("test")
    workers.start("boom", lambda: 1 / 0).join(2)
    assert "worker boom failed" in caplog.text
    release = threading.Event()
    workers.start("stuck", release.wait)
    assert workers.close(0.05) == ["stuck"]
    assert "still running" in caplog.text
    release.set()
    assert workers.join(2) == []
