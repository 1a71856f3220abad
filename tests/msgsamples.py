"""Build a valid sample of every registered message type from its schema (for round-trip tests)."""

from __future__ import annotations

import random
from typing import Any

import msgspec
import msgspec.inspect as mi

from assistant.messages import REGISTRY, Message


def _value(t: mi.Type, rng: random.Random, depth: int = 0) -> Any:
    if isinstance(t, mi.StrType):
        return rng.choice(["", "a", "héllo wörld", "voice.say", "x" * 40])
    if isinstance(t, mi.BoolType):
        return rng.random() < 0.5
    if isinstance(t, mi.IntType):
        return rng.randrange(0, 2**62)
    if isinstance(t, mi.FloatType):
        return rng.uniform(-1e3, 1e3)
    if isinstance(t, mi.BytesType):
        return rng.randbytes(rng.randrange(0, 300))
    if isinstance(t, mi.LiteralType):
        return rng.choice(t.values)
    if isinstance(t, (mi.ListType, mi.TupleType)) and not isinstance(t, mi.TupleType):
        return [_value(t.item_type, rng, depth + 1) for _ in range(rng.randrange(0, 3 if depth else 4))]
    if isinstance(t, mi.TupleType):
        return tuple(_value(it, rng, depth + 1) for it in t.item_types)
    if isinstance(t, mi.VarTupleType):
        return tuple(_value(t.item_type, rng, depth + 1) for _ in range(2))
    if isinstance(t, mi.DictType):
        return {f"k{i}": _value(t.value_type, rng, depth + 1) for i in range(rng.randrange(0, 3))}
    if isinstance(t, mi.StructType):
        return t.cls(**{f.name: _value(f.type, rng, depth + 1) for f in t.fields})
    raise TypeError(f"no sample for {t!r}")


#: Fields that must agree with each other (``Message.problem``): set after the random ones.
_CONSISTENT = {
    "voice.utterance": lambda m, rng: {"sample_rate": 16000, "pcm": m.pcm[: len(m.pcm) // 2 * 2], "play_at_ns": rng.randrange(0, 10**9)},
    "voice.say": lambda m, rng: {"not_before_ns": rng.randrange(0, 10**9)},
    "face.landmarks": lambda m, rng: {"shape": (len(m.points) // 8, 2), "points": m.points[: len(m.points) // 8 * 8]},
    "vision.preview": lambda m, rng: {"jpeg": b"\xff\xd8" + m.jpeg},
    "hearing.activity": lambda m, rng: {"frame_ms": 20, "energy_db": [round(rng.uniform(0, 90), 1) for _ in range(10)],
                                        "voiced": [rng.random() < 0.5 for _ in range(10)]},
}


def sample(cls: type[Message], seed: int = 0) -> Message:
    """A valid message of type ``cls`` with every field set (payloads included)."""
    rng = random.Random(f"{cls.TYPE}-{seed}")
    info = mi.type_info(cls)
    msg = cls(**{f.name: _value(f.type, rng) for f in info.fields})
    fix = _CONSISTENT.get(cls.TYPE)
    return msgspec.structs.replace(msg, **fix(msg, rng)) if fix else msg


def all_samples(seed: int = 0) -> list[Message]:
    return [sample(cls, seed) for cls in REGISTRY.values()]


def same(a: Message, b: Message) -> bool:
    """Equal after a msgpack round trip (floats compare exactly; tuples vs lists normalised)."""
    return msgspec.to_builtins(a) == msgspec.to_builtins(b) and type(a) is type(b)
