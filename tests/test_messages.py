"""Message schema: round trips, payload frames, registry, and a fuzzed decoder that never raises."""

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.messages import REGISTRY, DecodeStats, Say, Utterance, decode, encode, message
from assistant.messages.base import Message

from .msgsamples import all_samples, same, sample

DOMAINS = {"vision", "hearing", "voice", "face", "renderer", "email", "brain", "system"}


def test_every_domain_of_the_architecture_has_messages():
    assert {t.split(".")[0] for t in REGISTRY} == DOMAINS


def test_every_field_is_documented():
    for cls in REGISTRY.values():
        assert cls.__doc__, cls
        source = __import__("inspect").getsource(cls)
        for name in cls.__struct_fields__:
            after = source.split(f"    {name}:", 1)[1].splitlines()[1].strip()
            assert after.startswith('"""'), f"{cls.TYPE}.{name} has no docstring"


@pytest.mark.parametrize("cls", list(REGISTRY.values()), ids=list(REGISTRY))
def test_round_trip_every_type(cls):
    msg = sample(cls, seed=3)
    frames = encode(msg, seq=7, source="test", turn="t1")
    assert frames[0] == cls.TYPE.encode()
    assert len(frames) == 2 + len(cls.PAYLOADS)
    for name, frame in zip(cls.PAYLOADS, frames[2:]):
        assert frame == getattr(msg, name)
        assert getattr(msg, name) not in frames[1] or not getattr(msg, name)  # binary is not in the body
    rx = decode(frames)
    assert rx is not None
    assert same(rx.msg, msg)
    assert (rx.header.type, rx.header.v, rx.header.seq, rx.header.source, rx.header.turn) == (cls.TYPE, cls.VERSION, 7, "test", "t1")


def test_pcm_payload_is_a_separate_frame_and_intact():
    pcm = bytes(range(256)) * 400
    frames = encode(Utterance(utterance_id="u", text="hi", sample_rate=16000, play_at_ns=1, engine="espeak-ng", pcm=pcm), seq=0, source="s")
    assert len(frames[1]) < 200 and frames[2] == pcm
    assert decode(frames).msg.pcm == pcm


def test_unknown_and_malformed_are_counted_not_raised():
    stats = DecodeStats()
    good = encode(Say(text="hello"), seq=0, source="s")
    assert decode(good, stats) is not None
    assert decode([b"nope.type", good[1]], stats) is None  # topic != type
    unknown = msgspec.msgpack.encode((("zzz.unknown", 1, 0, 0, "s", ""), {}))
    assert decode([b"zzz.unknown", unknown], stats) is None
    wrong_body = msgspec.msgpack.encode((("voice.say", 1, 0, 0, "s", ""), {"text": 5}))
    assert decode([b"voice.say", wrong_body], stats) is None
    assert decode([b"voice.utterance", encode(Utterance(utterance_id="u", text="", sample_rate=1, play_at_ns=0, engine="e"), seq=0, source="s")[1]], stats) is None
    assert stats.as_dict() == {"received": 1, "malformed": 3, "unknown": 1}


def test_newer_sender_with_extra_fields_still_decodes():
    body = msgspec.msgpack.encode((("voice.say", 1, 0, 0, "s", ""), {"text": "hi", "emotion": "happy"}))
    rx = decode([b"voice.say", body])
    assert rx is not None and rx.msg.text == "hi" and rx.header.v == 1


@pytest.mark.parametrize("v", [0, 2, 99, -1])
def test_unknown_major_version_is_a_counted_drop(v):
    stats = DecodeStats()
    body = msgspec.msgpack.encode((("voice.say", v, 0, 0, "s", ""), {"text": "hi"}))
    assert decode([b"voice.say", body], stats) is None
    assert stats.as_dict() == {"received": 0, "malformed": 0, "unknown": 1}


def test_registry_refuses_duplicates_and_bad_payloads():
    with pytest.raises(ValueError):
        message("voice.say")(type("Dup", (Message,), {"__annotations__": {}}))
    with pytest.raises(TypeError):

        class Bad(Message, frozen=True):
            PAYLOADS = ("x",)
            x: str = ""

        message("test.bad")(Bad)


frames_strategy = st.lists(st.binary(max_size=200), min_size=0, max_size=6)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(frames_strategy)
def test_random_frames_never_crash_the_decoder(frames):
    stats = DecodeStats()
    assert decode(frames, stats) is None or stats.received == 1


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(all_samples()), st.data())
def test_mutated_valid_messages_never_crash_the_decoder(msg, data):
    frames = encode(msg, seq=1, source="fuzz")
    i = data.draw(st.integers(0, len(frames) - 1))
    blob = bytearray(frames[i])
    for _ in range(data.draw(st.integers(1, 4))):
        if blob:
            pos = data.draw(st.integers(0, len(blob) - 1))
            blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    frames[i] = bytes(blob[:cut])
    stats = DecodeStats()
    result = decode(frames, stats)
    assert result is not None or stats.malformed + stats.unknown == 1


def test_a_say_held_too_far_ahead_is_dropped_as_malformed():
    import time

    stats = DecodeStats()
    soon = Say(text="hello", not_before_ns=time.monotonic_ns() + 600_000_000)
    assert decode(encode(soon, seq=0, source="brain"), stats).msg.not_before_ns == soon.not_before_ns
    never = Say(text="hello", not_before_ns=time.monotonic_ns() + 3600 * 10**9)  # would mute the voice for an hour
    assert decode(encode(never, seq=1, source="brain"), stats) is None
    assert stats.as_dict() == {"received": 1, "malformed": 1, "unknown": 0}
    assert "not_before is 3600 s ahead" in (never.problem() or "")
