"""Mail parsing: the text the brain gets from hostile, broken and ordinary mail; never an exception."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.email.parse import decode_text, html_to_text, parse_mail

from .mailcorpus import build


def test_plain_mail_fields():
    m = parse_mail(
        b"From: =?utf-8?q?Zo=C3=AB?= <Zoe@Example.COM>\r\nTo: kiosk@example.com, \"B\" <b@y.org>\r\nCc: c@z.org\r\n"
        b"Subject: =?utf-8?q?h=C3=A9llo?=\r\n\tworld\r\nMessage-ID:  <abc@example.com> \r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHi\r\nthere\r\n"
    )
    assert (m.sender, m.sender_name, m.subject, m.text) == ("zoe@example.com", "Zoë", "héllo world", "Hi\nthere")
    assert m.to == ["kiosk@example.com", "b@y.org", "c@z.org"] and m.message_id == "<abc@example.com>"
    assert not m.truncated and m.attachments == 0


def test_html_is_sanitised_into_text():
    html = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body onload='x()'>"
        "<p>Hello &amp; <b>welcome</b></p><script>alert(1)</script><!-- secret --><ul><li>one</li><li>two</li></ul>"
        "<a href='javascript:evil()'>link</a><img src=x onerror=alert(2)></body></html>"
    )
    text = html_to_text(html)
    assert text.splitlines() == ["Hello & welcome", "", "- one", "", "- two", "", "link"]
    for bad in ("alert", "secret", "color", "javascript", "onerror", "<", "T\n"):
        assert bad not in text


def test_html_only_mail_and_alternative_prefers_plain():
    html_only = parse_mail(b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n<p>Lunch&nbsp;at <i>noon</i></p>")
    assert html_only.text == "Lunch at noon"  # &nbsp; is just a space to the voice
    alt = parse_mail(
        b'From: a@example.com\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--b\r\nContent-Type: text/plain\r\n\r\nplain\r\n--b--\r\n"
    )
    assert alt.text == "plain" and alt.attachments == 0


def test_wrong_and_unknown_charsets_still_give_text():
    assert decode_text("Café".encode("latin-1"), "utf-8") == "Café"
    assert decode_text("“q” €".encode("cp1252"), "us-ascii") == "“q” €"
    assert decode_text("Grüße".encode(), "x-unknown") == "Grüße"
    m = parse_mail(b"From: a@example.com\r\nContent-Type: text/plain; charset=x-nope\r\nSubject: =?x-bogus?q?abc?=\r\n\r\nna\xc3\xafve")
    assert m.text == "naïve" and isinstance(m.subject, str)


def test_attachments_are_counted_not_read():
    m = parse_mail(
        b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n--x\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n'
        b"--x\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF-secret\r\n"
        b"--x\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=b.txt\r\n\r\nattached text\r\n--x--\r\n"
    )
    assert m.text == "see attached" and m.attachments == 2


def test_limits_truncate_and_say_so():
    big = b"From: a@example.com\r\n\r\n" + b"word " * 10_000
    m = parse_mail(big[:5000], full_size=len(big), max_text_chars=100)
    assert m.truncated and len(m.text) <= 100
    many = b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n' + b"".join(b"--x\r\nContent-Type: image/png\r\n\r\nx\r\n" for _ in range(500)) + b"--x--\r\n"
    m = parse_mail(many, max_parts=20)
    assert m.truncated and m.attachments < 20


def test_senders_that_must_not_be_trusted():
    for header in (
        b"alice@example.com <evil@bad.org>",
        b"alice@example.com, bob@example.com",
        b'"alice@example.com"@evil.org',
        b"alice@example.com@evil.org",
        b"<>",
        b"",
    ):
        assert parse_mail(b"From: " + header + b"\r\n\r\nx").sender == "", header
    assert parse_mail(b"From: a@example.com\r\nFrom: b@example.com\r\n\r\nx").sender == ""
    assert parse_mail(b"Subject: no from\r\n\r\nx").sender == ""
    assert parse_mail(b'From: "alice@example.com" <evil@bad.org>\r\n\r\nx').sender == "evil@bad.org"


def test_broken_mime_keeps_the_text():
    no_boundary = parse_mail(b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nstill text\r\n")
    assert no_boundary.text == "still text"
    torn_base64 = parse_mail(b"From: a@example.com\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8gd29ybGQ!!@@x\r\n")
    assert torn_base64.text.startswith("hello wor")
    junk = parse_mail(b"From: a@example.com\r\n\r\n\x00\x01\x9f\xff text")
    assert "\x00" not in junk.text and "text" in junk.text


def test_every_corpus_mail_parses():
    for case in build(big=0):
        m = parse_mail(case.raw)
        assert isinstance(m.text, str) and isinstance(m.subject, str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000), st.sampled_from([b"", b"From: a@example.com\r\n", b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\n']))
def test_fuzzed_bytes_never_raise(data, prefix):
    m = parse_mail(prefix + data, max_parts=10)
    assert isinstance(m.text, str) and isinstance(m.sender, str)
