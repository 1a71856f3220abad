"""The message base: one frozen typed struct per message type, a header, and the wire format.

Wire: a ZeroMQ multipart message ``[topic, envelope, *payloads]``.

- ``topic`` is the message type as ASCII (``voice.utterance``); subscribers filter on its prefix.
- ``envelope`` is msgpack ``[header, body]``: the header fields below and the struct's fields.
- ``payloads`` are the struct's binary fields (PCM, JPEG, arrays), one frame each, in the order
  the class lists them in ``PAYLOADS``. Binary never goes inside the encoded body.

Decoding goes through an explicit registry (``REGISTRY``), filled by the ``@message`` decorator
in the per-domain modules that ``assistant.messages`` imports. Nothing is looked up by the name
the wire carries beyond that dictionary.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import msgspec

log = logging.getLogger(__name__)

#: Largest frame the bus accepts; larger messages are refused by ZeroMQ before they reach Python.
MAX_FRAME_BYTES = 64 * 1024 * 1024


class Message(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Base of every message. Subclasses are registered with ``@message(type, v)``."""

    TYPE: ClassVar[str] = ""
    #: Major schema version of this type. Evolve additively under one version (new fields get
    #: defaults, receivers ignore fields they do not know); bump it only for a change old
    #: receivers cannot read, which they then drop and count.
    VERSION: ClassVar[int] = 1
    #: Names of the ``bytes`` fields sent as separate frames, in frame order.
    PAYLOADS: ClassVar[tuple[str, ...]] = ()
    #: Largest size in bytes of each payload field; the broker refuses bigger frames (counted).
    PAYLOAD_MAX: ClassVar[dict[str, int]] = {}

    def problem(self) -> str | None:
        """Why this message cannot be right (sizes that disagree, a time out of its window), or ``None``.

        Checked by every decoder after the schema: a message with a problem is dropped and counted
        as malformed. Override in types whose fields must agree with each other.
        """
        return None


class Header(msgspec.Struct, frozen=True, array_like=True):
    """Header carried by every message."""

    type: str
    """Namespaced message type, e.g. ``voice.utterance``; equals the topic frame."""
    v: int
    """Major schema version the sender used for this type; a receiver drops (and counts) any other."""
    seq: int
    """Sequence number per sender and message type, starting at 0, to detect gaps."""
    ts_ns: int
    """Sender's ``time.monotonic_ns()`` when the message was published."""
    source: str
    """Name of the sending service (``voice``, ``camera``...)."""
    turn: str = ""
    """Id tying a visitor's utterance to its reply, for tracing; empty outside a turn."""


class _Envelope(msgspec.Struct, array_like=True):
    header: Header
    body: msgspec.Raw


class Received(msgspec.Struct, frozen=True):
    """A decoded message and its header."""

    header: Header
    msg: Message


REGISTRY: dict[str, type[Message]] = {}


def message(type_: str, v: int = 1):
    """Register a message class under its namespaced type."""

    def register(cls: type[Message]) -> type[Message]:
        if type_ in REGISTRY:
            raise ValueError(f"message type {type_!r} registered twice")
        if type_.count(".") < 1 or not type_.isascii():
            raise ValueError(f"message type {type_!r} must be ascii 'domain.name'")
        for name in cls.PAYLOADS:
            if cls.__annotations__.get(name) not in ("bytes", bytes):
                raise TypeError(f"{cls.__name__}.{name} is listed in PAYLOADS but is not bytes")
        cls.TYPE = type_
        cls.VERSION = v
        REGISTRY[type_] = cls
        return cls

    return register


_encoder = msgspec.msgpack.Encoder()


def encode(msg: Message, *, seq: int, source: str, turn: str = "", ts_ns: int | None = None) -> list[bytes]:
    """Encode ``msg`` into wire frames."""
    cls = type(msg)
    if not cls.TYPE:
        raise TypeError(f"{cls.__name__} is not a registered message")
    payloads = [getattr(msg, name) for name in cls.PAYLOADS]
    if payloads:
        # Blank the binary fields so they are omitted from the body (omit_defaults).
        msg = msgspec.structs.replace(msg, **{name: b"" for name in cls.PAYLOADS})
    header = Header(cls.TYPE, cls.VERSION, seq, time.monotonic_ns() if ts_ns is None else ts_ns, source, turn)
    envelope = _encoder.encode((header, msg))
    return [cls.TYPE.encode(), envelope, *payloads]


class DecodeStats:
    """Counts what a decoder received and dropped; logs drops without flooding the log."""

    def __init__(self) -> None:
        self.received = 0
        self.malformed = 0
        self.unknown = 0

    def drop(self, kind: str, reason: str) -> None:
        if kind == "unknown":
            self.unknown += 1
        else:
            self.malformed += 1
        _log_drop(kind, reason)

    def as_dict(self) -> dict[str, int]:
        return {"received": self.received, "malformed": self.malformed, "unknown": self.unknown}


_drop_log = {"last": 0.0, "unlogged": 0}


def _log_drop(kind: str, reason: str) -> None:
    """Log a dropped message, at most one line per 5 s per process, so garbage cannot flood the journal."""
    now = time.monotonic()
    if now - _drop_log["last"] >= 5.0:
        extra = f" (+{_drop_log['unlogged']} more since the last report)" if _drop_log["unlogged"] else ""
        log.warning("dropped %s message: %s%s", kind, reason, extra)
        _drop_log.update(last=now, unlogged=0)
    else:
        _drop_log["unlogged"] += 1


_decoders: dict[type[Message], msgspec.msgpack.Decoder] = {}
_envelope_decoder = msgspec.msgpack.Decoder(_Envelope)


def _decoder_for(cls: type[Message]) -> msgspec.msgpack.Decoder:
    dec = _decoders.get(cls)
    if dec is None:
        dec = _decoders[cls] = msgspec.msgpack.Decoder(cls)
    return dec


def decode_header(frames: list[Any], stats: DecodeStats | None = None) -> tuple[Header, type[Message], msgspec.Raw] | None:
    """Check the topic and header of ``frames``; the cheap part of decoding (used by the broker)."""
    stats = stats if stats is not None else DecodeStats()
    if len(frames) < 2:
        stats.drop("malformed", f"{len(frames)} frame(s), need topic and envelope")
        return None
    topic, blob = bytes(frames[0]), frames[1]
    try:
        env = _envelope_decoder.decode(blob)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # ValueError: bad UTF-8
        stats.drop("malformed", f"bad envelope on topic {topic[:64]!r}: {exc}")
        return None
    cls = REGISTRY.get(env.header.type)
    if cls is None:
        stats.drop("unknown", f"unknown type {env.header.type[:64]!r} from {env.header.source[:64]!r}")
        return None
    if env.header.v != cls.VERSION:
        # The version is the schema's major version: fields are only ever added with defaults
        # under one version, so a different number means a layout this process cannot read.
        stats.drop("unknown", f"{cls.TYPE} version {env.header.v} from {env.header.source[:64]!r}, this process reads {cls.VERSION}")
        return None
    if topic != cls.TYPE.encode():
        stats.drop("malformed", f"topic {topic[:64]!r} does not match type {cls.TYPE!r}")
        return None
    if len(frames) - 2 != len(cls.PAYLOADS):
        stats.drop("malformed", f"{cls.TYPE}: {len(frames) - 2} payload frame(s), expected {len(cls.PAYLOADS)}")
        return None
    return env.header, cls, env.body


def decode(frames: list[Any], stats: DecodeStats | None = None) -> Received | None:
    """Decode wire frames into a typed message; ``None`` (counted in ``stats``) when malformed or unknown.

    Never raises on bad input.
    """
    stats = stats if stats is not None else DecodeStats()
    checked = decode_header(frames, stats)
    if checked is None:
        return None
    header, cls, body = checked
    try:
        msg = _decoder_for(cls).decode(body)
        if cls.PAYLOADS:
            msg = msgspec.structs.replace(msg, **{name: bytes(f) for name, f in zip(cls.PAYLOADS, frames[2:])})
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:  # ValueError: bad UTF-8
        stats.drop("malformed", f"{cls.TYPE} from {header.source[:64]!r}: {exc}")
        return None
    problem = msg.problem()
    if problem is not None:
        stats.drop("malformed", f"{cls.TYPE} from {header.source[:64]!r}: {problem}")
        return None
    stats.received += 1
    return Received(header, msg)


def check_payloads(cls: type[Message], payloads: list[Any]) -> str | None:
    """Why the payload frames of a ``cls`` message are too big, or ``None`` (the broker's cheap check)."""
    for name, frame in zip(cls.PAYLOADS, payloads):
        limit = cls.PAYLOAD_MAX.get(name, MAX_FRAME_BYTES)
        size = len(frame.buffer) if hasattr(frame, "buffer") else len(frame)
        if size > limit:
            return f"{name} is {size} bytes, at most {limit}"
    return None


def restamp(header: Header, body: msgspec.Raw, source: str) -> bytes:
    """The envelope again with ``source`` in the header (the broker's authenticated identity)."""
    return _encoder.encode((msgspec.structs.replace(header, source=source), body))
