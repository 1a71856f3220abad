"""Authorisation: the allow-list, and DKIM/SPF verdicts from the one trusted Authentication-Results header."""

import pytest

from services.email.authorise import AllowListError, Authoriser, parse_auth_results
from services.email.parse import parse_mail


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


def test_dkim_required():
    auth = Authoriser(["@example.com"], require_dkim=True)
    assert auth.check(mail("a@example.com", "mx.kiosk.org; dkim=pass header.d=example.com")).allowed
    # Relaxed alignment: a subdomain sender signed by the parent domain.
    assert Authoriser([".example.com"], require_dkim=True).check(mail("a@mail.example.com", "mx; dkim=pass header.d=example.com")).allowed
    assert not auth.check(mail("a@example.com", "mx; dkim=fail header.d=example.com")).allowed
    assert not auth.check(mail("a@example.com", "mx; dkim=pass header.d=evil.org")).allowed  # signed, but by someone else
    assert not auth.check(mail("a@example.com")).allowed  # no verdict at all


def test_only_the_topmost_or_our_own_header_is_trusted():
    # The sender can write any header below ours; our server's (topmost) says fail.
    forged = mail("a@example.com", "mx.kiosk.org; dkim=fail header.d=example.com", "mx.kiosk.org; dkim=pass header.d=example.com")
    assert not Authoriser(["@example.com"], require_dkim=True).check(forged).allowed
    assert not Authoriser(["@example.com"], require_dkim=True, authserv_id="mx.kiosk.org").check(forged).allowed
    # With an authserv-id, a foreign header on top is skipped and ours is used.
    ours_below = mail("a@example.com", "relay.other.net; dkim=fail", "mx.kiosk.org; spf=pass smtp.mailfrom=a@example.com; dkim=pass header.d=example.com")
    assert Authoriser(["@example.com"], require_dkim=True, require_spf=True, authserv_id="mx.kiosk.org").check(ours_below).allowed
    assert not Authoriser(["@example.com"], require_dkim=True).check(ours_below).allowed


def test_spf_required_and_aligned():
    auth = Authoriser(["@example.com"], require_spf=True)
    assert auth.check(mail("a@example.com", "mx; spf=pass smtp.mailfrom=bounce@mail.example.com")).allowed
    assert not auth.check(mail("a@example.com", "mx; spf=pass smtp.mailfrom=bounce@evil.org")).allowed
    assert not auth.check(mail("a@example.com", "mx; spf=softfail smtp.mailfrom=a@example.com")).allowed
