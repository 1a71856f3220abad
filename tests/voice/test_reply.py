"""Streaming replies: pieces in order, the first ready before the rest, cancel, bad input."""

from __future__ import annotations

import time

import pytest

from services.voice.reply import ReplyStream
from services.voice.synthesizer import Synthesizer
from services.voice.tts.base import TtsError
from services.voice.tts.failover import FailoverChain
from services.voice.tts.gtts_engine import GttsEngine


def test_first_sentence_is_ready_while_the_rest_are_synthesised(google, espeak):
    synth = Synthesizer(FailoverChain([GttsEngine(), espeak]))
    reply = "Welcome to the lobby. " + " ".join(f"Sentence number {i} follows here." for i in range(6))
    t0 = time.monotonic()
    stream = ReplyStream(synth, reply, ahead=1)
    first = next(iter(stream))
    t_first = time.monotonic() - t0
    assert first.index == 0 and first.text == "Welcome to the lobby." and first.spoken.engine == "gtts"
    assert len(google.requests) <= 3, "the rest is not all done before the first is handed over"
    rest = list(stream)
    t_all = time.monotonic() - t0
    assert [p.index for p in rest] == list(range(1, 7)) and rest[-1].last and not first.last
    assert t_first < t_all / 2


def test_cancel_stops_synthesis(google, espeak):
    synth = Synthesizer(FailoverChain([GttsEngine(), espeak]))
    stream = ReplyStream(synth, " ".join(f"Sentence {i} is here." for i in range(30)), ahead=1)
    next(iter(stream))
    stream.cancel()
    time.sleep(0.3)
    sent = len(google.requests)
    time.sleep(0.3)
    assert len(google.requests) == sent < 30
    assert list(stream) == []


def test_empty_or_emoji_only_reply_is_a_clear_error(espeak):
    synth = Synthesizer(FailoverChain([espeak]))
    for text in ("", "  ", "🎉🎉"):
        with pytest.raises(TtsError, match="nothing to say") as err:
            ReplyStream(synth, text)
        assert err.value.permanent


def test_unsupported_language_piece_reports_error(espeak):
    pieces = list(ReplyStream(Synthesizer(FailoverChain([espeak])), "One. Two.", lang="xx"))
    assert [p.spoken for p in pieces] == [None, None]
    assert "does not speak language 'xx'" in pieces[0].error
