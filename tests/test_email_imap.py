"""The inbox watcher against a real dovecot: IDLE, polling fallback, reconnects, TLS, bad passwords."""

from __future__ import annotations

import queue
import subprocess
import time

import pytest

from assistant.config import EmailSettings
from services.email.authorise import Authoriser
from services.email.imap import MailboxWatcher
from services.email.intake import Intake
from services.email.store import MailStore

from .mailservers import PASSWORD, USER, Dovecot, dovecot_available

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="needs dovecot (apt install dovecot-imapd) and root")


def mail(n: int, sender: str = "alice@example.com") -> bytes:
    return f"X-Test-Id: {n}\r\nFrom: {sender}\r\nSubject: hello {n}\r\nMessage-ID: <t{n}@example.com>\r\n\r\nbody {n}\r\n".encode()


class Watching:
    """A watcher on its own thread with its events in a queue."""

    def __init__(self, tmp_path, dovecot: Dovecot, **settings) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        pw = tmp_path / "pw"
        pw.write_text(settings.pop("password", PASSWORD) + "\n")
        base = dict(enabled=True, imap_host="127.0.0.1", imap_port=dovecot.port, imap_tls="none", username=USER, password_file=str(pw), reconnect_backoff_s=(0.1, 0.3))
        self.settings = EmailSettings(**{**base, **settings})
        self.store = MailStore(tmp_path / "store.sqlite")
        self.events: queue.Queue = queue.Queue()
        self.watcher = MailboxWatcher(self.settings, Intake(self.store, Authoriser(["@example.com"]), self.settings), self.events.put)

    def __enter__(self):
        self.watcher.start()
        return self

    def __exit__(self, *exc):
        self.watcher.stop()
        self.store.close()

    def next_event(self, timeout: float = 10.0):
        return self.events.get(timeout=timeout)


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def dovecot():
    d = Dovecot().start()
    yield d
    d.close()


def test_idle_delivery_ack_and_quarantine(tmp_path, dovecot):
    with Watching(tmp_path, dovecot) as w:
        assert w.watcher.connected.wait(10) and w.watcher.mode == "idle"
        t0 = time.monotonic()
        dovecot.deliver(mail(1))
        event = w.next_event()
        assert time.monotonic() - t0 < 2.0
        assert (event.mail_id, event.sender, event.subject, event.text) == ("<t1@example.com>", "alice@example.com", "hello 1", "body 1")
        dovecot.deliver(mail(2, "mallory@evil.org"))
        wait_until(lambda: dovecot.test_ids("Quarantine") == ["2"])
        assert dovecot.test_ids("INBOX") == ["1"]  # not filed before the ack
        assert w.watcher.ack(event.mail_id)
        wait_until(lambda: dovecot.test_ids("Processed") == ["1"])
        assert dovecot.test_ids("INBOX") == []
        (flags,) = dovecot.flags("Processed")
        assert b"\\Seen" in flags and b"$AssistantHandled" in flags
        (qflags,) = dovecot.flags("Quarantine")
        assert b"\\Seen" not in qflags  # quarantined mail is left unread for the operator
        assert w.events.empty()


def test_polling_fallback_when_the_server_has_no_idle(tmp_path):
    d = Dovecot(idle=False).start()
    try:
        with Watching(tmp_path, d, poll_interval_s=0.3) as w:
            assert w.watcher.connected.wait(10)
            assert w.watcher.mode == "polling"
            d.deliver(mail(1))
            assert w.next_event().mail_id == "<t1@example.com>"
    finally:
        d.close()


def test_reconnects_after_a_server_restart_and_loses_nothing(tmp_path, dovecot):
    with Watching(tmp_path, dovecot) as w:
        assert w.watcher.connected.wait(10)
        dovecot.deliver(mail(1))
        first = w.next_event()
        dovecot.stop()
        dovecot.deliver(mail(2))  # arrives while IMAP is down
        w.watcher.ack(first.mail_id)  # the ack lands while IMAP is down
        time.sleep(0.5)
        dovecot.start()
        assert w.next_event(15).mail_id == "<t2@example.com>"
        wait_until(lambda: dovecot.test_ids("Processed") == ["1"])
        assert w.watcher.stats["imap_reconnects"] >= 1 and w.events.empty()


def test_wrong_password_retries_and_never_logs_it(tmp_path, dovecot, caplog):
    caplog.set_level("DEBUG")
    with Watching(tmp_path, dovecot, password="wrong-Pa55-qwerty") as w:
        wait_until(lambda: w.watcher.stats["imap_errors"] >= 1)
        assert not w.watcher.connected.is_set()
    assert "AUTHENTICATIONFAILED" in caplog.text or "LoginError" in caplog.text
    assert "wrong-Pa55-qwerty" not in caplog.text and PASSWORD not in caplog.text


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )
    (d / "key.pem").chmod(0o644)
    return d / "cert.pem", d / "key.pem"


def test_tls_with_a_private_ca_and_refusal_without_it(tmp_path, cert):
    d = Dovecot(tls_cert=cert).start()
    try:
        with Watching(tmp_path / "a", d, imap_tls="ssl", ca_file=str(cert[0])) as w:
            assert w.watcher.connected.wait(10)
            d.deliver(mail(1))
            assert w.next_event().mail_id == "<t1@example.com>"
        with Watching(tmp_path / "b", d, imap_tls="ssl") as w:  # untrusted certificate: never connects
            wait_until(lambda: w.watcher.stats["imap_errors"] >= 1)
            assert not w.watcher.connected.is_set()
    finally:
        d.close()
