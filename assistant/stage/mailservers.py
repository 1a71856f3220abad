"""Real mail servers for tests, the email benchmark and the demo: dovecot (IMAP) and aiosmtpd (SMTP).

Dovecot runs in the foreground with a throwaway config on a free loopback port, a passwd-file
user and a maildir in a temporary folder. Mail "arrives" the way a local delivery agent puts it
there: written into the maildir's ``tmp/`` and renamed into ``new/`` (RFC maildir semantics), so
mail keeps arriving while the IMAP server is down, as it does in production.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

MAIL_UID = 65534  # nobody: dovecot refuses root for mail and needs first_valid_uid <= this
USER = "kiosk"
PASSWORD = "s3cret-Pa55word-xyzzy"


def dovecot_available() -> bool:
    return shutil.which("dovecot") is not None and os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, up: bool, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {port} did not go {'up' if up else 'down'}")


class Dovecot:
    """A dovecot IMAP server of our own. ``idle=False`` hides the IDLE capability."""

    def __init__(self, *, idle: bool = True, tls_cert: tuple[Path, Path] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="dovecot-"))
        self.dir.chmod(0o755)  # the mail user (nobody) must reach its home below
        self.port = free_port()
        self.home = self.dir / "mail" / USER
        self.maildir = self.home / "Maildir"
        for sub in ("tmp", "new", "cur"):
            (self.maildir / sub).mkdir(parents=True)
        for path in [self.dir / "mail", self.home, self.maildir, *self.maildir.iterdir()]:
            os.chown(path, MAIL_UID, MAIL_UID)
        (self.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}:{MAIL_UID}:{MAIL_UID}::{self.home}::\n")
        ssl_conf = "ssl = no"
        listener = f"inet_listener imap {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}"
        if tls_cert:
            ssl_conf = f"ssl = required\nssl_cert = <{tls_cert[0]}\nssl_key = <{tls_cert[1]}"
            listener = f"inet_listener imap {{\n    port = 0\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.port}\n    ssl = yes\n  }}"
        caps = "" if idle else "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ UIDPLUS MOVE NAMESPACE CHILDREN\n"
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(
            f"""base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl_conf}
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 100
mail_location = maildir:~/Maildir
{caps}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.dir}/passwd
}}
service imap-login {{
  {listener}
}}
namespace inbox {{
  inbox = yes
  separator = /
}}
"""
        )
        self.proc: subprocess.Popen | None = None
        self._n = itertools.count()

    def start(self) -> "Dovecot":
        # Its own process group: a stop takes the imap children (and their connections) down too,
        # as a real server restart does; dovecot's master alone leaves them running.
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _wait_port(self.port, up=True)
        except TimeoutError:
            self.proc.kill()
            raise RuntimeError(f"dovecot did not start: {self.proc.communicate()[1]!r} {self.log()[-2000:]}") from None
        return self

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the children the master left behind
            except ProcessLookupError:
                pass
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        self.proc = None
        _wait_port(self.port, up=False)

    def restart(self, down_s: float = 0.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self) -> str:
        path = self.dir / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, raw: bytes) -> Path:
        """Put a mail into the inbox as a delivery agent does (works while dovecot is down)."""
        name = f"{time.time():.6f}.P{os.getpid()}Q{next(self._n)}.test"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(raw)
        os.chown(tmp, MAIL_UID, MAIL_UID)
        dest = self.maildir / "new" / name
        os.rename(tmp, dest)
        return dest

    def client(self):
        from imapclient import IMAPClient

        c = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=30)
        c.login(USER, PASSWORD)
        return c

    def test_ids(self, folder: str) -> list[str]:
        """``X-Test-Id`` of every message in ``folder`` (duplicates kept), read over IMAP."""
        c = self.client()
        try:
            if not c.folder_exists(folder):
                return []
            c.select_folder(folder, readonly=True)
            uids = c.search(["ALL"])
            out = []
            for i in range(0, len(uids), 200):
                data = c.fetch(uids[i : i + 200], ["BODY.PEEK[HEADER.FIELDS (X-TEST-ID)]"])
                for d in data.values():
                    raw = d[b"BODY[HEADER.FIELDS (X-TEST-ID)]"].decode("ascii", "replace")
                    out.append(raw.partition(":")[2].strip())
            return out
        finally:
            c.logout()

    def flags(self, folder: str) -> list[tuple]:
        c = self.client()
        try:
            c.select_folder(folder, readonly=True)
            return [d[b"FLAGS"] for d in c.fetch(c.search(["ALL"]), ["FLAGS"]).values()]
        finally:
            c.logout()


class SmtpSink:
    """An aiosmtpd server on a fixed loopback port that keeps every mail; ``stop``/``start`` to simulate an outage."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[bytes] = []
        self.lock = threading.Lock()
        self.controller: Any = None  # aiosmtpd's Controller (imported when started)

    def start(self) -> "SmtpSink":
        import logging

        # aiosmtpd logs every connection and command at INFO ("mail.log"): debug chatter, not results.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        from aiosmtpd.controller import Controller

        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.messages.append(envelope.original_content or envelope.content)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, loop=asyncio.new_event_loop())
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def received(self) -> list[bytes]:
        with self.lock:
            return list(self.messages)


def service_env(dovecot: Dovecot, tmp: Path, *, smtp_port: int = 1, allowed: str = '["@example.com", "boss@partner.org"]', **extra: str) -> dict[str, str]:
    """Environment that points ``services.email`` at these servers (config through ASSISTANT_* overrides)."""
    pw = tmp / "imap-password"
    pw.write_text(PASSWORD + "\n")
    env = {
        "ASSISTANT_EMAIL__ENABLED": "true",
        "ASSISTANT_EMAIL__IMAP_HOST": "127.0.0.1",
        "ASSISTANT_EMAIL__IMAP_PORT": str(dovecot.port),
        "ASSISTANT_EMAIL__IMAP_TLS": "none",
        "ASSISTANT_EMAIL__USERNAME": USER,
        "ASSISTANT_EMAIL__PASSWORD_FILE": str(pw),
        "ASSISTANT_EMAIL__ALLOWED_SENDERS": allowed,
        "ASSISTANT_EMAIL__STORE_PATH": str(tmp / "email.sqlite"),
        "ASSISTANT_EMAIL__RECONNECT_BACKOFF_S": "[0.1, 0.2, 0.5, 1.0]",
        "ASSISTANT_EMAIL__SMTP_HOST": "127.0.0.1",
        "ASSISTANT_EMAIL__SMTP_PORT": str(smtp_port),
        "ASSISTANT_EMAIL__SMTP_TLS": "none",
        "ASSISTANT_EMAIL__FROM_ADDRESS": "kiosk@example.com",
        "ASSISTANT_EMAIL__SEND_BACKOFF_S": "[0.2, 0.5, 1.0, 2.0]",
    }
    env.update({f"ASSISTANT_EMAIL__{k.upper()}": v for k, v in extra.items()})
    return env
