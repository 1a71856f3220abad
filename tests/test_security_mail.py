"""Forged mail headers against the real email service, dovecot and the bus.

With ``require_dkim`` on, a mail whose only credential is a forged ``Authentication-Results:
dkim=pass`` (dovecot keeps such headers as they came) is quarantined, and so is a mail validly
signed by another domain; a mail the sender's domain really signed gets through.
"""

from __future__ import annotations

import json

import pytest

from assistant.messages import EmailAck, EmailReceived, Heartbeat, SystemState

from .mailservers import Dovecot, dkim_signer, dovecot_available, service_env
from .procs import wait_for

pytestmark = pytest.mark.skipif(not dovecot_available(), reason="needs dovecot (apt install dovecot-imapd) and root")


def mail(n: int, *headers: str) -> bytes:
    return ("".join(h + "\r\n" for h in headers) + f"X-Test-Id: {n}\r\nFrom: alice@example.com\r\nTo: kiosk@example.com\r\n"
            f"Subject: order {n}\r\nMessage-ID: <f{n}@example.com>\r\n\r\nPlease announce {n}.\r\n").encode()


def test_forged_authentication_results_are_quarantined(procs, tmp_path):
    sign, keys = dkim_signer(tmp_path)
    dovecot = Dovecot().start()
    try:
        procs.broker()
        brain = procs.client([EmailReceived.TYPE, SystemState.TYPE, Heartbeat.TYPE])
        table = "{" + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in keys.items()) + "}"
        env = service_env(dovecot, tmp_path, allowed='["@example.com"]', require_dkim="true", dkim_keys=table,
                          authserv_id="mx.kiosk.org")
        proc = procs.start("services.email", env=env)
        wait_for(brain, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "email" and rx.msg.state == "ready", 20)
        dovecot.deliver(mail(1, "Authentication-Results: mx.kiosk.org; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=alice@example.com"))
        dovecot.deliver(sign(mail(2), domain="evil.org"))
        dovecot.deliver(sign(mail(3)))
        rx = wait_for(brain, lambda rx: isinstance(rx.msg, EmailReceived), 15)
        assert rx.msg.subject == "order 3"
        brain.publish(EmailAck(mail_id=rx.msg.mail_id))
        hb = wait_for(brain, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "email"
                      and rx.msg.counters.get("mail_quarantined", 0) >= 2 and rx.msg.counters.get("mail_processed", 0) >= 1, 15)
        assert hb.msg.counters["mail_quarantined"] == 2
        assert sorted(dovecot.test_ids("Quarantine")) == ["1", "2"]
        assert proc.poll() is None
    finally:
        dovecot.close()
