"""Clock steps both ways: retries, back-off and expiry follow the monotonic clock.

A 2-day forward step while a mail waits for an unreachable SMTP server must not fail it for
good, and a mail queued under a clock that was then set back a year must not wait a year.
"""

from __future__ import annotations

import queue
import time

from assistant.clock import SteadyClock, clamp_future
from assistant.config import EmailSettings
from assistant.messages import EmailSend
from services.email.outbox import Outbox
from services.email.store import MailStore

from .mailservers import SmtpSink, free_port

DAY = 86_400.0


class SteppedWall:
    """The system clock: real time plus a step an operator (or NTP) applies."""

    def __init__(self) -> None:
        self.step = 0.0

    def __call__(self) -> float:
        return time.time() + self.step


def outbox(tmp_path, port: int, wall: SteppedWall, give_up_s: float = 3600.0):
    store = MailStore(tmp_path / "store.sqlite", clock=SteadyClock(wall=wall))
    results: queue.Queue = queue.Queue()
    settings = EmailSettings(enabled=True, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none",
                             from_address="kiosk@example.com", send_backoff_s=(0.1, 0.2, 0.4), send_give_up_s=give_up_s)
    box = Outbox(settings, store, on_sent=lambda sid, mid: results.put(("sent", sid)),
                 on_failed=lambda sid, err, perm: results.put(("failed", sid, err)))
    return store, box, results


def test_steady_clock_ignores_steps_both_ways():
    wall = SteppedWall()
    clock = SteadyClock(wall=wall)
    t0 = clock()
    wall.step = 2 * DAY
    assert clock() - t0 < 1.0
    wall.step = -365 * DAY
    assert 0.0 <= clock() - t0 < 1.0
    assert clamp_future(t0 + 365 * DAY, t0, 60.0) == t0 and clamp_future(t0 + 5, t0, 60.0) == t0 + 5


def test_forward_step_does_not_fail_a_waiting_mail(tmp_path):
    wall = SteppedWall()
    dead_port = free_port()  # nothing listens: the mail waits, retried with back-off
    store, box, results = outbox(tmp_path, dead_port, wall)
    box.start()
    try:
        box.submit(EmailSend(send_id="s1", to=["bob@example.org"], subject="Hi", body="later"))
        time.sleep(0.5)
        wall.step = 2 * DAY  # the clock jumps two days ahead (give-up is one hour)
        time.sleep(1.5)      # several more tries fail meanwhile
        assert results.empty(), results.queue
        assert box.stats["smtp_errors"] >= 2
        assert store.outbox_get("s1").state == "pending"
    finally:
        box.stop()
        store.close()


def test_mail_queued_before_a_backward_step_is_sent_promptly(tmp_path):
    sink = SmtpSink().start()
    try:
        wall = SteppedWall()
        dead_port = free_port()
        store, box, _ = outbox(tmp_path, dead_port, wall)
        box.start()
        box.submit(EmailSend(send_id="s1", to=["bob@example.org"], subject="Hi", body="soon"))
        time.sleep(0.4)
        box.stop()
        store.close()
        # Restart after the clock was corrected a year back, with the server reachable now.
        wall.step = -365 * DAY
        store, box, results = outbox(tmp_path, sink.port, wall)
        box.start()
        try:
            assert results.get(timeout=10) == ("sent", "s1")
        finally:
            box.stop()
            store.close()
        assert len(sink.received()) == 1
    finally:
        sink.stop()
