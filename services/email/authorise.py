"""Who may instruct the kiosk: an allow-list of senders, optionally backed by DKIM/SPF verdicts.

The From address alone is easy to forge, so an operator can also require the verdicts that the
receiving server wrote into ``Authentication-Results`` (RFC 8601). Only one header is trusted: the
topmost one (added last, by our own server), or the topmost one carrying the configured
authserv-id. Headers further down were written by whoever sent the mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .parse import ParsedMail

_COMMENT = re.compile(r"\([^()]*\)")


class AllowListError(ValueError):
    """An allow-list entry is not an address, ``@domain`` or ``.domain``."""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str


def parse_auth_results(value: str) -> tuple[str, list[tuple[str, str, dict[str, str]]]]:
    """``(authserv_id, [(method, result, {ptype.property: value})])`` of one header value."""
    for _ in range(5):  # nested comments
        value = _COMMENT.sub(" ", value)
    parts = [p.strip() for p in value.split(";")]
    authserv = parts[0].split()[0].lower() if parts and parts[0].split() else ""
    results = []
    for resinfo in parts[1:]:
        tokens = resinfo.split()
        if not tokens or "=" not in tokens[0]:
            continue
        method, _, result = tokens[0].partition("=")
        props = {}
        for tok in tokens[1:]:
            key, eq, val = tok.partition("=")
            if eq:
                props[key.lower()] = val.strip('"').lower()
        results.append((method.lower().split("/")[0], result.lower(), props))
    return authserv, results


def _aligned(domain: str, sender_domain: str) -> bool:
    """Relaxed alignment (as in DMARC): the same domain, or one is a subdomain of the other."""
    domain = domain.rpartition("@")[2].strip(".")
    return bool(domain) and (domain == sender_domain or sender_domain.endswith("." + domain) or domain.endswith("." + sender_domain))


class Authoriser:
    """Decides whether a parsed mail comes from someone allowed to instruct the kiosk."""

    def __init__(self, allowed: tuple[str, ...] | list[str], *, require_dkim: bool = False, require_spf: bool = False, authserv_id: str = "") -> None:
        self.addresses: set[str] = set()
        self.domains: set[str] = set()
        self.parents: set[str] = set()
        for entry in allowed:
            e = entry.strip().lower()
            if re.fullmatch(r"[^@\s]+@[a-z0-9.-]+\.[a-z0-9-]+", e):
                self.addresses.add(e)
            elif re.fullmatch(r"@[a-z0-9.-]+\.[a-z0-9-]+", e):
                self.domains.add(e[1:])
            elif re.fullmatch(r"\.[a-z0-9.-]+\.[a-z0-9-]+", e):
                self.parents.add(e)
            else:
                raise AllowListError(f"email.allowed_senders: {entry!r} is not an address, '@domain' or '.domain'")
        self.require_dkim = require_dkim
        self.require_spf = require_spf
        self.authserv_id = authserv_id.lower()

    @property
    def empty(self) -> bool:
        return not (self.addresses or self.domains or self.parents)

    def check(self, mail: ParsedMail) -> Verdict:
        sender = mail.sender
        if not sender:
            return Verdict(False, "no single valid From address")
        domain = mail.sender_domain
        if not (sender in self.addresses or domain in self.domains or any(domain.endswith(p) for p in self.parents)):
            return Verdict(False, f"sender {sender} is not in allowed_senders")
        if not (self.require_dkim or self.require_spf):
            return Verdict(True, "allow-listed")
        results = self._trusted_results(mail.auth_results)
        if results is None:
            return Verdict(False, "no trusted Authentication-Results header")
        if self.require_dkim and not any(m == "dkim" and r == "pass" and _aligned(p.get("header.d") or p.get("header.i", ""), domain) for m, r, p in results):
            return Verdict(False, f"no dkim=pass for {domain}")
        if self.require_spf and not any(m == "spf" and r == "pass" and _aligned(p.get("smtp.mailfrom") or p.get("smtp.helo") or domain, domain) for m, r, p in results):
            return Verdict(False, f"no spf=pass for {domain}")
        return Verdict(True, "allow-listed and authenticated")

    def _trusted_results(self, headers: list[str]):
        for value in headers:
            authserv, results = parse_auth_results(value)
            if not self.authserv_id or authserv == self.authserv_id:
                return results
        return None
