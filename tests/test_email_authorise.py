"""Authorisation: the allow-list, and DKIM/SPF verdicts from the one trusted Authentication-Results header."""

import pytest

from services.email.authorise import AllowListError, Authoriser, parse_auth_results
from services.email.parse import parse_mail

from .mailservers import dkim_signer


def mail(sender: str, *auth: str):
    head = f"From: {sender}\r\n" + "".join(f"Authentication-Results: {a}\r\n" for a in auth)
    return parse_mail((head + "Subject: s\r\n\r\nbody").encode())


ALLOW = ["alice@example.com", "@partner.org", ".corp.example"]


@pytest.mark.parametrize(
    "sender, ok",
    [
        ("Alice <ALICE@example.com>", True),
        ("bob@example.com", False),  # only alice at example.com
        ("anyone@partner.org", True),
        ("x@sub.partner.org", False),  # @domain is that domain only
        ("x@eu.corp.example", True),
        ("x@corp.example", False),  # .domain is subdomains only
        ("alice@example.com.evil.org", False),
        ('"alice@example.com" <evil@bad.org>', False),
        ("alice@example.com <evil@bad.org>", False),
        ("alice@example.com, evil@bad.org", False),
    ],
)
def test_allow_list(sender, ok):
    verdict = Authoriser(ALLOW).check(mail(sender))
    assert verdict.allowed is ok, verdict.reason


def test_empty_allow_list_allows_nobody_and_bad_entries_are_config_errors():
    assert Authoriser([]).empty and not Authoriser([]).check(mail("alice@example.com")).allowed
    with pytest.raises(AllowListError, match="allowed_senders"):
        Authoriser(["not an address"])


def test_parse_auth_results_with_comments():
    serv, results = parse_auth_results("mx.kiosk.org 1; dkim=pass (good sig) header.d=example.com header.s=s1; spf=fail (no) smtp.mailfrom=x@y.org; dmarc=pass")
    assert serv == "mx.kiosk.org"
    assert results[0] == ("dkim", "pass", {"header.d": "example.com", "header.s": "s1"}) and results[1][:2] == ("spf", "fail")


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    return dkim_signer(tmp_path_factory.mktemp("dkim"))


def raw_mail(sender: str, *auth: str, body: str = "body") -> bytes:
    return (f"From: {sender}\r\n" + "".join(f"Authentication-Results: {a}\r\n" for a in auth) + f"To: kiosk@example.com\r\nSubject: s\r\n\r\n{body}\r\n").encode()


def judge(auth: Authoriser, raw: bytes):
    return auth.check(parse_mail(raw), raw)


def test_dkim_is_verified_here_and_aligned(signer):
    sign, keys = signer
    auth = Authoriser(["@example.com", ".example.com"], require_dkim=True, dkim_keys=keys)
    assert judge(auth, sign(raw_mail("a@example.com"))).allowed
    assert judge(auth, sign(raw_mail("a@mail.example.com"))).allowed  # relaxed alignment: parent domain signs
    tampered = sign(raw_mail("a@example.com")).replace(b"\r\nbody", b"\r\nsend me the codes")
    assert not judge(auth, tampered).allowed
    other = judge(auth, sign(raw_mail("a@example.com"), domain="evil.org"))  # valid, but someone else's
    assert not other.allowed and "evil.org" in other.reason
    assert not judge(auth, raw_mail("a@example.com")).allowed  # not signed at all


def test_forged_authentication_results_never_pass_dkim(signer):
    _, keys = signer
    forged = raw_mail("a@example.com", "mx.kiosk.org; dkim=pass header.d=example.com", "mx.kiosk.org; spf=pass smtp.mailfrom=a@example.com")
    for kwargs in ({}, {"authserv_id": "mx.kiosk.org"}):
        verdict = judge(Authoriser(["@example.com"], require_dkim=True, dkim_keys=keys, **kwargs), forged)
        assert not verdict.allowed and "not signed" in verdict.reason


def test_spf_needs_our_server_on_top_and_an_aligned_envelope_sender():
    with pytest.raises(AllowListError, match="authserv_id"):
        Authoriser(["@example.com"], require_spf=True)
    auth = Authoriser(["@example.com"], require_spf=True, authserv_id="mx.kiosk.org")
    assert judge(auth, raw_mail("a@example.com", "mx.kiosk.org; spf=pass smtp.mailfrom=bounce@mail.example.com")).allowed
    assert not judge(auth, raw_mail("a@example.com", "mx.kiosk.org; spf=pass smtp.mailfrom=bounce@evil.org")).allowed
    assert not judge(auth, raw_mail("a@example.com", "mx.kiosk.org; spf=softfail smtp.mailfrom=a@example.com")).allowed
    assert not judge(auth, raw_mail("a@example.com", "mx.kiosk.org; spf=pass")).allowed  # a bare pass aligns with nothing
    # A header from another server on top (ours would be there, had ours received it): not trusted.
    assert not judge(auth, raw_mail("a@example.com", "relay.other.net; spf=fail", "mx.kiosk.org; spf=pass smtp.mailfrom=a@example.com")).allowed
    assert not judge(Authoriser(["@example.com"], require_spf=True, authserv_id="other.net"),
                     raw_mail("a@example.com", "mx.kiosk.org; spf=pass smtp.mailfrom=a@example.com")).allowed
