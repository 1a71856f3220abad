"""Turn raw RFC 5322 bytes into what the brain needs: sender, subject, plain text, and limits.

Mail is hostile input. Parsing uses the standard library's modern API (``policy.default``) and
never raises: a header that does not parse falls back to its raw text, a wrong or unknown charset
falls back to UTF-8, then cp1252 (which decodes any byte), HTML is sanitised with nh3 (ammonia)
before it is turned into text, and only ``max_parts`` MIME parts are looked at.
"""

from __future__ import annotations

import base64
import codecs
import hashlib
import logging
import re
from dataclasses import dataclass, field
from email import errors, policy
from email.message import EmailMessage
from email.parser import BytesParser
from html.parser import HTMLParser

import nh3

log = logging.getLogger(__name__)

_ADDR = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$")
_MSGID = re.compile(r"<[^<>\s]{1,250}>")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class ParsedMail:
    """What the service keeps of one mail."""

    message_id: str
    """Message-ID header (``<...>``), empty when missing or unusable."""
    sender: str
    """Lower-case address of the single From mailbox; empty when missing, ambiguous or invalid."""
    sender_name: str
    subject: str
    text: str
    to: list[str] = field(default_factory=list)
    attachments: int = 0
    truncated: bool = False
    auth_results: list[str] = field(default_factory=list)
    """Authentication-Results header values, topmost (added last, by our own server) first."""
    date: str = ""
    defects: int = 0

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2]

    @property
    def digest(self) -> str:
        """Hash of what makes two copies the same mail (to tell true duplicates from Message-ID clashes)."""
        h = hashlib.sha256()
        for part in (self.sender, self.subject, self.date, self.text):
            h.update(part.encode("utf-8", "surrogatepass") + b"\0")
        return h.hexdigest()


def parse_mail(raw: bytes, *, full_size: int | None = None, max_text_chars: int = 20_000, max_parts: int = 100) -> ParsedMail:
    """Parse ``raw`` (possibly only the first bytes of a mail of ``full_size`` bytes). Never raises."""
    cut = full_size is not None and full_size > len(raw)
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - e.g. RecursionError on absurd nesting: keep what we can
        log.warning("mail did not parse (%s: %s); treated as having no sender", type(exc).__name__, exc)
        return ParsedMail("", "", "", "", _clean_text(raw[:max_text_chars].decode("utf-8", "replace")), truncated=True)
    sender, name = _sender(msg)
    text, attachments, parts_cut = _body(msg, max_parts)
    if len(text) > max_text_chars:
        text, cut = text[:max_text_chars], True
    return ParsedMail(
        message_id=_message_id(_raw_header(msg, "message-id")),
        sender=sender,
        sender_name=name,
        subject=_one_line(_header(msg, "subject"))[:300],
        text=text,
        to=_recipients(msg),
        attachments=attachments,
        truncated=cut or parts_cut,
        auth_results=[_one_line(v) for k, v in msg.raw_items() if k.lower() == "authentication-results"],
        date=_one_line(_raw_header(msg, "date"))[:100],
        defects=len(msg.defects),
    )


# --- headers ----------------------------------------------------------------------------------
def _raw_header(msg: EmailMessage, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return str(value)
    return ""


def _header(msg: EmailMessage, name: str) -> str:
    """Decoded header (RFC 2047), or the raw text when the header parser gives up."""
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except Exception:  # noqa: BLE001 - the header parser has known crashes on hostile input
        return _raw_header(msg, name)


def _one_line(s: str) -> str:
    return " ".join(_CONTROL.sub(" ", s.replace("\r", " ").replace("\n", " ")).split())


def _message_id(raw: str) -> str:
    m = _MSGID.search(raw)
    return m.group(0) if m else ""


def _addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, lower-case address) of each valid mailbox in header ``name``."""
    out: list[tuple[str, str]] = []
    try:
        values = msg.get_all(name) or []
        for header in values:
            # "alice@example.com <evil@bad.org>" parses as alice with an InvalidHeaderDefect: any
            # defect beyond obsolete syntax means the parser guessed, and a guess is not a sender.
            if any(not isinstance(d, errors.ObsoleteHeaderDefect) for d in getattr(header, "defects", ())):
                out.append(("", ""))
                continue
            for addr in getattr(header, "addresses", ()):
                spec = (addr.addr_spec or "").lower()
                out.append((_one_line(addr.display_name or ""), spec if _ADDR.match(spec) else ""))
    except Exception:  # noqa: BLE001
        return [("", "")]  # unparseable: one mailbox we cannot trust
    return out


def _sender(msg: EmailMessage) -> tuple[str, str]:
    """The From mailbox. Several mailboxes, an invalid address or a parse failure give no sender:
    authorisation must never guess who wrote a mail."""
    mailboxes = _addresses(msg, "from")
    if len(mailboxes) != 1 or len(msg.get_all("from") or []) != 1:
        return "", mailboxes[0][0] if mailboxes else ""
    name, addr = mailboxes[0]
    return addr, name[:200]


def _recipients(msg: EmailMessage) -> list[str]:
    seen: list[str] = []
    for name in ("to", "cc"):
        for _, addr in _addresses(msg, name):
            if addr and addr not in seen:
                seen.append(addr)
    return seen[:50]


# --- body ---------------------------------------------------------------------------------------
def _body(msg: EmailMessage, max_parts: int) -> tuple[str, int, bool]:
    """(text, attachments counted, parts limit hit)."""
    leaves: list[EmailMessage] = []
    cut = False
    for i, part in enumerate(msg.walk()):
        if i >= max_parts:
            cut = True
            break
        if not part.is_multipart():
            leaves.append(part)
    body = None
    try:
        body = msg.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001 - malformed structure: fall back to the first text leaf
        body = None
    if body is None or body.is_multipart():
        # A multipart without a usable boundary stays one unsplit leaf: its text is still the message.
        body = next((p for p in leaves if p.get_content_maintype() in ("text", "multipart") and not _is_attachment(p)), None)
    attachments = sum(1 for p in leaves if p is not body and (_is_attachment(p) or p.get_content_maintype() != "text"))
    if body is None:
        return "", attachments, cut
    text = _part_text(body)
    if body.get_content_subtype() == "html":
        text = html_to_text(text)
    return _clean_text(text), attachments, cut


def _is_attachment(part: EmailMessage) -> bool:
    try:
        return part.is_attachment()
    except Exception:  # noqa: BLE001
        return True


def _part_text(part: EmailMessage) -> str:
    try:
        payload = part.get_payload(decode=True)  # undoes base64/quoted-printable, tolerating damage
        if str(part.get("content-transfer-encoding", "")).strip().lower() == "base64" and any(
            isinstance(d, errors.InvalidBase64CharactersDefect | errors.InvalidBase64PaddingDefect | errors.InvalidBase64LengthDefect) for d in part.defects
        ):
            payload = _lenient_base64(part.get_payload(decode=False))
    except Exception:  # noqa: BLE001
        payload = None
    if payload is None:
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    try:
        declared = part.get_content_charset() or "us-ascii"
    except Exception:  # noqa: BLE001
        declared = "us-ascii"
    return decode_text(payload, declared)


def _lenient_base64(text: str) -> bytes:
    """Decode what can be decoded of damaged base64: drop stray characters, ignore a torn tail."""
    clean = re.sub(r"[^A-Za-z0-9+/]", "", text if isinstance(text, str) else "")
    clean = clean[: len(clean) - len(clean) % 4]
    return base64.b64decode(clean) if clean else b""


def decode_text(payload: bytes, declared: str) -> str:
    """Decode with the declared charset, else UTF-8, else cp1252 (mislabelled Windows mail), else latin-1."""
    candidates = [declared, "utf-8", "cp1252"]
    for charset in candidates:
        try:
            codecs.lookup(charset)
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return payload.decode("latin-1")


def _clean_text(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text.replace("\t", " "))
    text = re.sub(r"[ \u00a0]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- HTML ---------------------------------------------------------------------------------------
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr", "dt", "dd"}
_KEEP = _BLOCK | {"td", "th", "a", "b", "i", "em", "strong", "span"}


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag == "li":
            self.out.append("\n- ")
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCK:
            self.out.append("\n")
        if tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag):
        if tag in _BLOCK and tag != "br":
            self.out.append("\n")
        if tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data):
        self.out.append(data if self.pre else re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Sanitise with nh3 (drops scripts, styles, comments and every attribute), then keep the text
    with line breaks where blocks were."""
    safe = nh3.clean(html, tags=_KEEP, clean_content_tags={"script", "style", "title"}, attributes={}, strip_comments=True, link_rel=None)
    builder = _TextBuilder()
    builder.feed(safe)
    builder.close()
    lines = (line.strip() for line in "".join(builder.out).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
