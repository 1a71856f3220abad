"""CURVE key pairs: one per service, one for the operator, one for the broker.

Layout of a key directory (``bus.keys_dir``, or ``<runtime_dir>/keys``)::

    public/NAME.key            the public half (ZeroMQ certificate format), readable by the broker
    private/NAME.key_secret    the pair, readable only by its owner

The file name is the identity the broker stamps as ``source`` and checks the publish rules
against. Under systemd a unit gets its own pair with ``LoadCredential=bus-NAME.key_secret:...``;
the process finds it in ``$CREDENTIALS_DIRECTORY`` first, so the unit's user needs no access to
the other services' secrets.

``assistant install`` makes the pairs in ``/etc/assistant/keys`` (``keys_dir`` set): a missing
pair there is an error. With ``keys_dir`` empty the keys live in the runtime directory, and a
development, test or demo kiosk makes the pairs it is missing (under a lock, so that processes
starting together agree): whoever can write that directory owns the kiosk anyway.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from assistant.config import BusSettings

from .endpoints import BusError, ensure_private_dir, runtime_dir

BROKER = "bus"
"""Identity of the broker's own key pair."""
OPERATOR = "operator"
"""Identity of the operator's command-line key pair."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class BusKeyError(BusError):
    """A key pair is missing or unreadable; the message says which and how to make it."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"bad bus identity {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    return name


class KeyStore:
    """Finds (and in a development key directory, makes) key pairs by identity."""

    def __init__(self, directory: Path, *, auto_create: bool) -> None:
        self.directory = Path(directory)
        self.auto_create = auto_create
        self.public_dir = self.directory / "public"
        self.private_dir = self.directory / "private"

    @classmethod
    def from_settings(cls, settings: BusSettings) -> "KeyStore":
        if settings.keys_dir:
            return cls(Path(settings.keys_dir), auto_create=False)
        return cls(runtime_dir(settings) / "keys", auto_create=True)

    # --- reading -----------------------------------------------------------------------
    def pair(self, name: str) -> tuple[bytes, bytes]:
        """``(public, secret)`` of ``name``: from ``$CREDENTIALS_DIRECTORY``, the key directory, or made now."""
        check_name(name)
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        if creds:
            path = Path(creds) / f"bus-{name}.key_secret"
            if path.exists():
                return _load_pair(path)
        path = self.private_dir / f"{name}.key_secret"
        if path.exists():
            return _load_pair(path)
        if not self.auto_create:
            raise BusKeyError(f"no bus key pair for {name!r} ({path} is missing); "
                            "`sudo assistant install` makes the missing pairs (and keeps the others)")
        with self._locked():
            if not path.exists():
                self._make(name)
        return _load_pair(path)

    def public(self, name: str) -> bytes:
        """The public key of ``name`` (the broker's, for a client)."""
        check_name(name)
        path = self.public_dir / f"{name}.key"
        if not path.exists():
            if not self.auto_create:
                raise BusKeyError(f"no public bus key for {name!r} ({path} is missing); run `assistant install`")
            return self.pair(name)[0]
        public, _ = zmq.auth.load_certificate(str(path))
        return public

    def peers(self) -> dict[bytes, str]:
        """Every known public key (raw 32 bytes) and its identity."""
        out: dict[bytes, str] = {}
        if not self.public_dir.is_dir():
            return out
        for path in sorted(self.public_dir.glob("*.key")):
            name = path.stem
            if not _NAME.match(name):
                continue
            try:
                public, _ = zmq.auth.load_certificate(str(path))
            except (OSError, ValueError):
                continue
            out[z85.decode(public)] = name  # ZAP hands over the raw 32 bytes
        return out

    def stamp(self) -> int:
        """Changes when a public key is added, replaced or removed (for the broker's re-reading)."""
        try:
            return self.public_dir.stat().st_mtime_ns
        except OSError:
            return 0

    # --- making ------------------------------------------------------------------------
    def make(self, name: str, *, replace: bool = False) -> tuple[bytes, bytes]:
        """Make (or with ``replace``, rotate) the pair of ``name``."""
        check_name(name)
        with self._locked():
            if replace or not (self.private_dir / f"{name}.key_secret").exists():
                self._make(name)
        return _load_pair(self.private_dir / f"{name}.key_secret")

    def _make(self, name: str) -> None:
        """Write a fresh pair atomically (lock held): the secret first, then the public half."""
        for d, mode in ((self.public_dir, 0o755), (self.private_dir, 0o700)):
            d.mkdir(parents=True, exist_ok=True, mode=mode)
        with tempfile.TemporaryDirectory(dir=self.private_dir) as tmp:
            pub, sec = zmq.auth.create_certificates(tmp, name)
            os.chmod(sec, 0o600)
            os.replace(sec, self.private_dir / f"{name}.key_secret")
            os.chmod(pub, 0o644)
            os.replace(pub, self.public_dir / f"{name}.key")

    @contextmanager
    def _locked(self):
        ensure_private_dir(self.directory.parent)
        ensure_private_dir(self.directory, 0o700)
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _load_pair(path: Path) -> tuple[bytes, bytes]:
    try:
        public, secret = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as exc:
        raise BusKeyError(f"cannot read the bus key pair {path}: {exc}") from exc
    if not secret:
        raise BusKeyError(f"{path} holds no secret key")
    return public, secret


def curve_client(sock: zmq.Socket, keys: KeyStore, name: str) -> None:
    """Make ``sock`` a CURVE client with ``name``'s pair, talking to the broker's key."""
    public, secret = keys.pair(name)
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.curve_serverkey = keys.public(BROKER)


def keys_for_endpoint(endpoint: str) -> KeyStore:
    """The development key store beside an ipc endpoint (``<runtime_dir>/keys``)."""
    if endpoint.startswith("ipc://"):
        return KeyStore(Path(endpoint[len("ipc://"):]).parent / "keys", auto_create=True)
    return KeyStore.from_settings(BusSettings())
