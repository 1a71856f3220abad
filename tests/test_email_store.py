"""The store and the intake state machine: stable ids, duplicates, acks and redelivery across restarts."""

import msgspec

from assistant.config.schema import EmailSettings

from services.email.authorise import Authoriser
from services.email.intake import Intake
from services.email.store import MailStore


def raw(n: int, sender: str = "alice@example.com", msgid: str | None = None, text: str = "hello") -> bytes:
    mid = f"Message-ID: {msgid}\r\n" if msgid is not False else ""
    return f"From: {sender}\r\nSubject: s{n}\r\n{mid}\r\n{text} {n}\r\n".encode()


def intake(path, clock=None, redeliver=60.0):
    kw = {"clock": clock} if clock else {}
    return Intake(MailStore(path), Authoriser(["@example.com"]), EmailSettings(redeliver_after_s=redeliver), **kw)


def test_deliver_wait_ack_then_processed(tmp_path):
    it = intake(tmp_path / "s.sqlite")
    d = it.examine(raw(1, msgid="<a@x>"))
    assert d.action == "deliver" and d.mail_id == "<a@x>" and d.event.delivery == 1 and d.event.text == "hello 1"
    assert it.examine(raw(1, msgid="<a@x>")).action == "wait"  # a second copy while the first is unacked
    assert it.ack("<a@x>") and not it.ack("<unknown@x>")
    assert it.examine(raw(1, msgid="<a@x>")).action == "processed"


def test_unauthorised_is_quarantined_and_never_stored(tmp_path):
    it = intake(tmp_path / "s.sqlite")
    d = it.examine(raw(1, sender="m@evil.org", msgid="<a@x>"))
    assert d.action == "quarantine" and "evil.org" in d.reason
    assert it.store.mail_state("<a@x>") is None  # a forged mail cannot pre-empt the real one's id


def test_restart_before_ack_redelivers_with_the_same_id(tmp_path):
    path = tmp_path / "s.sqlite"
    first = intake(path).examine(raw(1, msgid=False))
    assert first.mail_id.startswith("sha256:")
    again = intake(path).examine(raw(1, msgid=False))  # a new process: nothing in memory
    assert (again.action, again.mail_id, again.event.delivery) == ("deliver", first.mail_id, 2)
    intake(path).ack(first.mail_id)
    assert intake(path).examine(raw(1, msgid=False)).action == "processed"


def test_message_id_clash_with_other_content_is_a_different_mail(tmp_path):
    it = intake(tmp_path / "s.sqlite")
    a = it.examine(raw(1, msgid="<same@x>"))
    b = it.examine(raw(2, msgid="<same@x>", sender="bob@example.com"))
    assert a.action == b.action == "deliver" and a.mail_id == "<same@x>" and b.mail_id.startswith("<same@x>#")
    it.ack(a.mail_id)
    assert it.examine(raw(2, msgid="<same@x>", sender="bob@example.com")).action == "wait"
    assert intake(tmp_path / "s.sqlite").examine(raw(2, msgid="<same@x>", sender="bob@example.com")).mail_id == b.mail_id


def test_unacked_mail_is_redelivered_after_the_timeout(tmp_path):
    now = [0.0]
    it = intake(tmp_path / "s.sqlite", clock=lambda: now[0], redeliver=30)
    d = it.examine(raw(1, msgid="<a@x>"))
    now[0] = 29
    assert it.due_redeliveries() == []
    now[0] = 31
    (event,) = it.due_redeliveries()
    assert event == msgspec.structs.replace(d.event, delivery=2)
    it.ack("<a@x>")
    now[0] = 100
    assert it.due_redeliveries() == [] and it.waiting == 0


def test_outbox_is_idempotent_and_persistent(tmp_path):
    store = MailStore(tmp_path / "s.sqlite")
    assert store.outbox_add("s1", ["a@b.org"], "subj", "body", "", "<id@x>") is None
    again = store.outbox_add("s1", ["other@b.org"], "x", "y", "", "<id2@x>")
    assert again.recipients == ["a@b.org"] and again.message_id == "<id@x>"
    store.close()
    store = MailStore(tmp_path / "s.sqlite")
    (due,) = store.outbox_due(now=1e12)
    assert due.send_id == "s1" and due.state == "pending"
    assert store.outbox_retry_later("s1", next_try=2e12, error="451 later") == 1
    assert store.outbox_due(now=1e12) == [] and store.outbox_next_due() == 2e12
    store.outbox_done("s1", "sent")
    assert store.outbox_pending() == 0 and store.outbox_get("s1").state == "sent"
