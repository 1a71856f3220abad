"""The one back-off schedule (``assistant.backoff``) and the places that use it."""

from __future__ import annotations

from assistant.backoff import Backoff, delay


def test_schedule_steps_then_repeats_its_last_step_and_resets():
    b = Backoff((0.5, 1.0, 5.0))
    assert [b.next() for _ in range(5)] == [0.5, 1.0, 5.0, 5.0, 5.0]
    assert b.failures == 5
    b.reset()
    assert b.next() == 0.5


def test_delay_by_failure_count_and_empty_schedule():
    assert [delay((1.0, 2.0), n) for n in (-1, 0, 1, 7)] == [1.0, 1.0, 2.0, 2.0]
    assert delay((), 3, default=60.0) == 60.0
    assert Backoff(()).next() == 1.0


def test_supervisor_restarts_follow_the_configured_schedule():
    from assistant.config import Config
    from assistant.supervisor import Child, Supervisor

    sup = Supervisor.__new__(Supervisor)
    sup.config = Config()
    steps = sup.config.supervisor.restart_backoff_s
    child = Child("x", ["true"])
    got = []
    for failures in range(len(steps) + 2):
        child.failures_in_row = failures
        got.append(sup._backoff(child))
    assert got == [0.0, *steps, steps[-1]]
