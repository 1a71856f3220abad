"""The real mail servers tests use live in ``assistant.stage.mailservers`` (the demo runs them too)."""

import subprocess
from pathlib import Path

from assistant.stage.mailservers import (  # noqa: F401
    MAIL_UID, PASSWORD, USER, Dovecot, SmtpSink, dovecot_available, free_port, service_env,
)


def dkim_signer(folder: Path):
    """A real RSA key (openssl) for DKIM: ``(sign(raw, domain="example.com") -> signed raw, key records)``.

    The same key is published for example.com and evil.org (``email.dkim_keys`` form), so a mail
    signed "by evil.org" verifies but does not align with an example.com sender.
    """
    import base64

    import dkim

    key = Path(folder) / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True, capture_output=True).stdout
    record = "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()
    private = key.read_bytes()

    def sign(raw: bytes, domain: str = "example.com") -> bytes:
        return dkim.sign(raw, b"sel", domain.encode(), private, include_headers=[b"from", b"subject", b"to"]) + raw

    return sign, {"sel._domainkey.example.com": record, "sel._domainkey.evil.org": record}
