"""Passwords come from files (systemd credentials), never from the config file or the logs."""

from __future__ import annotations

import ssl
from typing import Mapping

from assistant.errors import SetupError
from assistant.paths import credential_path


class CredentialError(SetupError):
    """A password file is missing or unreadable; the message names the file and the setting, never its content."""


def read_secret(name: str, setting: str, environ: Mapping[str, str] | None = None) -> str:
    """First line of the file named by ``setting``; read on every login so a rotated password is picked up."""
    if not name:
        raise CredentialError(f"email.{setting} is empty; point it at a file holding the password (or a systemd credential name)")
    path = credential_path(name, environ)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialError(f"email.{setting}: cannot read {path} ({type(exc).__name__}); check the path and its permissions") from None
    secret = text.splitlines()[0] if text else ""
    if not secret:
        raise CredentialError(f"email.{setting}: {path} is empty")
    return secret


def tls_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    """Client TLS context: the system store plus ``ca_file``; no checks at all when ``verify`` is off."""
    ctx = ssl.create_default_context()
    if ca_file:
        ctx.load_verify_locations(cafile=ca_file)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
