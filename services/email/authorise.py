"""Who may instruct the kiosk: an allow-list of senders, optionally backed by DKIM and SPF.

The From address alone is easy to forge, so an operator can also require

- DKIM (``require_dkim``): the kiosk verifies the signature itself (dkimpy; the key from
  ``email.dkim_keys`` or DNS), and the signing domain must align with the From domain (relaxed,
  as in DMARC). An ``Authentication-Results: dkim=pass`` header is never enough: anyone can write
  one, and an IMAP server such as dovecot does not remove forged ones.
- SPF (``require_spf``): only the server that took the SMTP connection can judge it, so its
  verdict is read from ``Authentication-Results`` (RFC 8601), trusted only when ``authserv_id``
  names that server and the topmost header carries it. Configure it only for a server documented
  to remove foreign headers with its id (Postfix with OpenDMARC/OpenDKIM, rspamd, Exchange
  Online); without ``authserv_id`` no header is trusted at all. The SPF-checked envelope domain
  (``smtp.mailfrom``) must be present and align with From: a bare ``spf=pass`` does not count.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from .parse import ParsedMail

log = logging.getLogger(__name__)

#: DKIM signatures looked at per mail (a mail with hundreds of them stays cheap).
_MAX_SIGNATURES = 5

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

    def __init__(self, allowed: tuple[str, ...] | list[str], *, require_dkim: bool = False, require_spf: bool = False, authserv_id: str = "",
                 dkim_keys: dict[str, str] | None = None, dkim_timeout_s: float = 5.0) -> None:
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
        self.authserv_id = authserv_id.lower().strip()
        if require_spf and not self.authserv_id:
            raise AllowListError("email.require_spf needs email.authserv_id: only your receiving server can judge SPF, "
                                 "and its Authentication-Results header is trusted only under its authserv-id")
        self.dkim_keys = {k.lower().rstrip("."): v for k, v in (dkim_keys or {}).items()}
        self.dkim_timeout_s = dkim_timeout_s

    @property
    def empty(self) -> bool:
        return not (self.addresses or self.domains or self.parents)

    def check(self, mail: ParsedMail, raw: bytes | None = None) -> Verdict:
        """``raw``: the mail as received (needed for ``require_dkim``)."""
        sender = mail.sender
        if not sender:
            return Verdict(False, "no single valid From address")
        domain = mail.sender_domain
        if not (sender in self.addresses or domain in self.domains or any(domain.endswith(p) for p in self.parents)):
            return Verdict(False, f"sender {sender} is not in allowed_senders")
        if not (self.require_dkim or self.require_spf):
            return Verdict(True, "allow-listed")
        if self.require_dkim:
            ok, why = self.verify_dkim(raw, domain) if raw is not None else (False, "the raw mail was not kept")
            if not ok:
                return Verdict(False, f"no valid DKIM signature aligned with {domain}: {why}")
        if self.require_spf:
            results = self._trusted_results(mail.auth_results)
            if results is None:
                return Verdict(False, f"no Authentication-Results header from {self.authserv_id} on top")
            if not any(m == "spf" and r == "pass" and _aligned(p.get("smtp.mailfrom", ""), domain) for m, r, p in results):
                return Verdict(False, f"no spf=pass with an envelope sender aligned with {domain}")
        return Verdict(True, "allow-listed and authenticated")

    def _trusted_results(self, headers: list[str]):
        """The results of the topmost header, if it is our server's (ours is added last, on top)."""
        if not headers:
            return None
        authserv, results = parse_auth_results(headers[0])
        return results if self.authserv_id and authserv == self.authserv_id else None

    def verify_dkim(self, raw: bytes, domain: str) -> tuple[bool, str]:
        """Verify the mail's DKIM signatures; ``(True, d=)`` for the first valid one aligned with ``domain``."""
        import dkim

        try:
            signed = dkim.DKIM(raw, logger=_QUIET, timeout=self.dkim_timeout_s)
            count = sum(1 for name, _ in signed.headers if name.lower() == b"dkim-signature")
        except Exception as exc:  # noqa: BLE001 - a mail that does not parse has no valid signature
            return False, f"unreadable ({type(exc).__name__})"
        if not count:
            return False, "not signed"
        why = "signature does not verify"
        for idx in range(min(count, _MAX_SIGNATURES)):
            try:
                ok = signed.verify(idx=idx, dnsfunc=self._txt)
            except Exception as exc:  # noqa: BLE001 - dkimpy raises on bad tags, keys and DNS
                why = f"{type(exc).__name__}: {exc}"[:200]
                continue
            signer = (signed.domain or b"").decode("ascii", "replace").lower()
            if ok and _aligned(signer, domain):
                return True, signer
            why = f"signed by {signer}, not {domain}" if ok else why
        return False, why

    def _txt(self, name: bytes, timeout: float = 5) -> bytes | None:
        """The DKIM key record: from ``email.dkim_keys`` first, then DNS."""
        key = name.decode("ascii", "replace").lower().rstrip(".")
        if key in self.dkim_keys:
            return self.dkim_keys[key].encode()
        import dkim.dnsplug

        return dkim.dnsplug.get_txt(name, timeout=timeout)


class _Quiet(logging.Logger):
    """dkimpy logs each step; the verdict (with its reason) is what the quarantine records."""

    def __init__(self) -> None:
        super().__init__("dkim", logging.CRITICAL + 1)


_QUIET = _Quiet()
