"""The SMTP outbox against a real aiosmtpd server: sending, validation, idempotency, retries, persistence."""

from __future__ import annotations

import email
import queue
import time
from email import policy

import pytest

from assistant.config import EmailSettings
from assistant.messages import EmailSend
from services.email.outbox import Outbox
from services.email.store import MailStore

from .mailservers import SmtpSink, free_port


class Sending:
    def __init__(self, tmp_path, port: int, **settings) -> None:
        base = dict(enabled=True, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none", from_address="kiosk@example.com", send_backoff_s=(0.1, 0.2, 0.4))
        self.store = MailStore(tmp_path / "store.sqlite")
        self.results: queue.Queue = queue.Queue()
        self.outbox = Outbox(
            EmailSettings(**{**base, **settings}), self.store,
            on_sent=lambda sid, mid: self.results.put(("sent", sid, mid)),
            on_failed=lambda sid, err, perm: self.results.put(("failed", sid, err, perm)),
        )

    def __enter__(self):
        self.outbox.start()
        return self

    def __exit__(self, *exc):
        self.outbox.stop()
        self.store.close()

    def result(self, timeout: float = 10.0):
        return self.results.get(timeout=timeout)


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()


def req(send_id: str = "s1", **kw) -> EmailSend:
    return EmailSend(**{"send_id": send_id, "to": ["bob@example.org"], "subject": "Hi", "body": "Hello Bob,\nsee you.", **kw})


def test_sends_a_reply_with_the_right_headers(tmp_path, smtp):
    with Sending(tmp_path, smtp.port) as s:
        s.outbox.submit(req(subject="Re: lunch\r\nBcc: victim@evil.org", in_reply_to="<m1@example.com>"))
        kind, send_id, message_id = s.result()
        assert (kind, send_id) == ("sent", "s1")
    (raw,) = smtp.received()
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Message-ID"] == message_id and msg["From"] == "kiosk@example.com" and msg["To"] == "bob@example.org"
    assert msg["In-Reply-To"] == "<m1@example.com>" and msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"] == "Re: lunch Bcc: victim@evil.org" and msg["Bcc"] is None  # no header injection
    assert msg.get_content().replace("\r\n", "\n").strip() == "Hello Bob,\nsee you."


@pytest.mark.parametrize(
    "bad, why",
    [
        (dict(to=[]), "to must list"),
        (dict(to=["bob@example.org\r\nBcc: x@y.org"]), "not a plain address"),
        (dict(to=["Bob <bob@example.org>"]), "not a plain address"),
        (dict(in_reply_to="<x>\r\nBcc: y@z.org"), "in_reply_to"),
        (dict(send_id=""), "send_id"),
    ],
)
def test_bad_requests_fail_permanently_at_once(tmp_path, smtp, bad, why):
    with Sending(tmp_path, smtp.port) as s:
        s.outbox.submit(req(**bad))
        kind, _, error, permanent = s.result()
        assert kind == "failed" and permanent and why in error
    assert smtp.received() == []


def test_no_from_address_is_a_clear_failure(tmp_path, smtp):
    with Sending(tmp_path, smtp.port, from_address="") as s:
        s.outbox.submit(req())
        assert "from_address" in s.result()[2]


def test_same_send_id_is_sent_once(tmp_path, smtp):
    with Sending(tmp_path, smtp.port) as s:
        s.outbox.submit(req())
        first = s.result()
        s.outbox.submit(req(body="changed"))
        assert s.result() == first
    assert len(smtp.received()) == 1


def test_permanent_refusal_fails_and_others_still_go(tmp_path):
    from aiosmtpd.controller import Controller

    got = []

    class Picky:
        async def handle_RCPT(self, server, session, envelope, address, options):
            if address.startswith("nobody@"):
                return "550 5.1.1 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            got.append(envelope.rcpt_tos)
            return "250 OK"

    ctl = Controller(Picky(), hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        with Sending(tmp_path, ctl.port) as s:
            s.outbox.submit(req("bad", to=["nobody@example.org"]))
            s.outbox.submit(req("good"))
            results = {r[1]: r for r in (s.result(), s.result())}
        assert results["bad"][0] == "failed" and results["bad"][3] is True and "550" in results["bad"][2]
        assert results["good"][0] == "sent" and got == [["bob@example.org"]]
    finally:
        ctl.stop()


def test_outbox_survives_a_restart_while_the_server_is_down(tmp_path):
    port = free_port()
    with Sending(tmp_path, port) as s:  # nobody listens yet
        for i in range(3):
            s.outbox.submit(req(f"s{i}"))
        time.sleep(0.5)
        assert s.outbox.stats["smtp_errors"] >= 1 and s.results.empty()
    sink = SmtpSink(port).start()
    try:
        with Sending(tmp_path, port) as s:  # a new process: the queue comes from the store
            sent = {s.result()[1] for _ in range(3)}
        assert sent == {"s0", "s1", "s2"} and len(sink.received()) == 3
    finally:
        sink.stop()


def test_gives_up_after_send_give_up_s(tmp_path):
    with Sending(tmp_path, free_port(), send_give_up_s=0.3) as s:
        s.outbox.submit(req())
        kind, _, error, permanent = s.result()
        assert kind == "failed" and permanent and "unreachable" in error
