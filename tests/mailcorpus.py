"""A hostile but realistic mail corpus for the email service's acceptance test and benchmark.

Every mail starts with ``X-Test-Id`` so the test can find it in any folder afterwards. Each case
says whether it must be acted on (authorised) and which logical mail it is: two byte-identical
copies (a true duplicate delivery) are one logical mail; two different mails that share a
Message-ID are two.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass

ALLOWED = '["@example.com", "boss@partner.org"]'
GOOD_SENDERS = ["Alice <alice@example.com>", "bob@example.com", '"Boss, The" <boss@partner.org>', "=?utf-8?q?Zo=C3=AB?= <zoe@example.com>"]
BAD_SENDERS = [
    "Mallory <mallory@evil.org>",
    "alice@example.com.evil.org",
    '"alice@example.com" <evil@bad.org>',
    "alice@example.com <evil@bad.org>",
    "alice@example.com, mallory@evil.org",
    "intern@partner.org",
    "<>",
]


@dataclass(frozen=True)
class Case:
    test_id: str
    raw: bytes
    authorised: bool
    logical: str
    kind: str


def _mail(test_id: str, headers: list[str], body: bytes) -> bytes:
    head = "\r\n".join([f"X-Test-Id: {test_id}", *headers]).encode("utf-8")
    return head + b"\r\n\r\n" + body


def _plain(n: int, sender: str, text: str, *, msgid: str | None = None, charset: str = "utf-8", extra: list[str] | None = None) -> tuple[list[str], bytes]:
    headers = [f"From: {sender}", "To: kiosk@example.com", f"Subject: message {n}", f"Date: Mon, 23 Nov 2026 10:{n // 60 % 60:02d}:{n % 60:02d} +0000"]
    if msgid is not False:
        headers.append(f"Message-ID: {msgid or f'<m{n}@corpus.example.com>'}")
    headers += ["MIME-Version: 1.0", f"Content-Type: text/plain; charset={charset}", *(extra or [])]
    return headers, text.encode(charset if charset in ("utf-8", "us-ascii", "latin-1") else "utf-8") + b"\r\n"


def build(n_total: int = 300, *, big: int = 3, big_bytes: int = 20 * 1024 * 1024, seed: int = 8) -> list[Case]:
    """``n_total`` mails (copies included) of every awkward kind; ``big`` of them ``big_bytes`` long."""
    rng = random.Random(seed)
    cases: list[Case] = []

    def add(kind: str, headers: list[str], body: bytes, authorised: bool, logical: str | None = None) -> None:
        tid = str(len(cases))
        cases.append(Case(tid, _mail(tid, headers, body), authorised, logical or f"L{tid}", kind))

    n = 0
    kinds = ["plain", "html", "alternative", "latin1-as-utf8", "unknown-charset", "cp1252-as-ascii", "no-boundary", "unclosed-boundary",
             "bad-base64", "no-message-id", "no-subject-date", "binary-junk", "unauthorised", "no-from", "attachments", "bad-2047"]
    while len(cases) < n_total - 2 * 12 - big:  # room for duplicate pairs and big mails
        kind = kinds[n % len(kinds)]
        sender = GOOD_SENDERS[n % len(GOOD_SENDERS)]
        n += 1
        if kind == "plain":
            add(kind, *_plain(n, sender, f"Please announce: meeting {n} in room {rng.randint(1, 9)}."), True)
        elif kind == "html":
            h, _ = _plain(n, sender, "")
            h[-1] = "Content-Type: text/html; charset=utf-8"
            add(kind, h, f"<html><head><style>p{{color:red}}</style><script>alert({n})</script></head><body><p>Hello &amp; welcome {n}</p><ul><li>one</li></ul></body></html>".encode(), True)
        elif kind == "alternative":
            h, _ = _plain(n, sender, "")
            h[-1] = 'Content-Type: multipart/alternative; boundary="b1"'
            body = f"--b1\r\nContent-Type: text/plain\r\n\r\nplain {n}\r\n--b1\r\nContent-Type: text/html\r\n\r\n<p>html {n}</p>\r\n--b1--\r\n".encode()
            add(kind, h, body, True)
        elif kind == "latin1-as-utf8":
            h, _ = _plain(n, sender, "")
            add(kind, h, f"Caf\xe9 na\xefve {n}".encode("latin-1"), True)
        elif kind == "unknown-charset":
            h, _ = _plain(n, sender, "", charset="x-no-such-charset")
            add(kind, h, f"Gr\u00fc\u00dfe {n}".encode("utf-8"), True)
        elif kind == "cp1252-as-ascii":
            h, _ = _plain(n, sender, "", charset="us-ascii")
            add(kind, h, f"\u201cquoted\u201d \u20ac{n}".encode("cp1252"), True)
        elif kind == "no-boundary":
            h, _ = _plain(n, sender, "")
            h[-1] = "Content-Type: multipart/mixed"
            add(kind, h, f"no boundary at all {n}\r\n".encode(), True)
        elif kind == "unclosed-boundary":
            h, _ = _plain(n, sender, "")
            h[-1] = 'Content-Type: multipart/mixed; boundary="zz"'
            add(kind, h, f"--zz\r\nContent-Type: text/plain\r\n\r\nnever closed {n}\r\n--zz\r\nContent-Type: application/pdf\r\n\r\n%PDF".encode(), True)
        elif kind == "bad-base64":
            h, _ = _plain(n, sender, "")
            h.append("Content-Transfer-Encoding: base64")
            add(kind, h, base64.b64encode(f"base64 text {n}".encode())[:-3] + b"!!@@\r\n", True)
        elif kind == "no-message-id":
            add(kind, *_plain(n, sender, f"no message id, unique {n}", msgid=False), True)
        elif kind == "no-subject-date":
            add(kind, [f"From: {sender}", f"Message-ID: <m{n}@corpus.example.com>"], f"bare {n}\r\n".encode(), True)
        elif kind == "binary-junk":
            h, _ = _plain(n, sender, "")
            h[-1] = "Content-Type: text/plain; charset=utf-8"
            add(kind, h, bytes(rng.randrange(256) for _ in range(2000)) + b"\x00\x00", True)
        elif kind == "unauthorised":
            add(kind, *_plain(n, BAD_SENDERS[n % len(BAD_SENDERS)], f"do something bad {n}"), False)
        elif kind == "no-from":
            h, body = _plain(n, "x", f"who sent this {n}")
            add(kind, h[1:], body, False)
        elif kind == "attachments":
            h, _ = _plain(n, sender, "")
            h[-1] = 'Content-Type: multipart/mixed; boundary="att"'
            blob = base64.b64encode(bytes(rng.randrange(256) for _ in range(3000))).decode()
            body = (f"--att\r\nContent-Type: text/plain\r\n\r\nsee attached {n}\r\n"
                    f"--att\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=a.png\r\nContent-Transfer-Encoding: base64\r\n\r\n{blob}\r\n"
                    f"--att\r\nContent-Type: application/octet-stream\r\n\r\nxx\r\n--att--\r\n").encode()
            add(kind, h, body, True)
        elif kind == "bad-2047":
            h, body = _plain(n, sender, f"bad encoded words {n}")
            h[2] = "Subject: =?x-bogus?B?!!!?= =?utf-8?q?ok=?= tail"
            add(kind, h, body, True)
    # Duplicates: 6 byte-identical redeliveries, 4 Message-ID clashes with different content,
    # 2 clashes where the second mail is from an unauthorised sender.
    for i in range(6):
        first = next(c for c in cases[i * 16 :] if c.kind == "plain")
        cases.append(Case(str(len(cases)), first.raw.replace(f"X-Test-Id: {first.test_id}".encode(), f"X-Test-Id: {len(cases)}".encode(), 1), True, first.logical, "true-duplicate"))
    for i in range(4):
        n += 1
        add("id-clash", *_plain(n, GOOD_SENDERS[i], f"a different mail reusing an id {n}", msgid=f"<m{1 + 16 * i}@corpus.example.com>"), True)
    for i in range(2):
        n += 1
        add("id-clash-unauthorised", *_plain(n, BAD_SENDERS[i], f"hijack attempt {n}", msgid=f"<m{2 + 16 * i}@corpus.example.com>"), False)
    while len(cases) < n_total - big:
        n += 1
        add("plain", *_plain(n, GOOD_SENDERS[n % 4], f"filler {n}"), True)
    chunk = (b"A long announcement line that goes on and on. " * 20 + b"\r\n")
    for i in range(big):
        n += 1
        h, _ = _plain(n, GOOD_SENDERS[i] if i < big - 1 else BAD_SENDERS[0], "")
        add("20MB", h, chunk * (big_bytes // len(chunk)), i < big - 1)
    rng.shuffle(cases)
    return cases
