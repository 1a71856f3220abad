"""Failover gTTS -> espeak-ng with real engines: unreachable network, hanging server, back-off."""

from __future__ import annotations

import time

import pytest

from fake_google import blackhole
from services.voice.tts.base import TtsError
from assistant.config.schema import VoiceFailoverSettings as FailoverSettings
from services.voice.tts.failover import FailoverChain
from assistant.config.schema import VoiceGttsSettings as GttsSettings
from services.voice.tts.gtts_engine import GttsEngine


class Clock:
    """A clock the test moves by hand, to step over the back-off period."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now


def test_unreachable_network_falls_over_at_once(offline, espeak):
    chain = FailoverChain([GttsEngine(), espeak], FailoverSettings(timeout_s=1.5))
    t0 = time.monotonic()
    spoken = chain.synthesize("Hello there.")
    elapsed = time.monotonic() - t0
    assert spoken.engine == "espeak-ng" and spoken.synthesis.duration_s > 0.3
    assert len(spoken.failed) == 1 and spoken.failed[0].startswith("gtts: ")
    assert elapsed < 0.3, f"failover took {elapsed:.3f} s"
    assert chain.in_backoff("gtts")


def test_hanging_network_falls_over_at_the_deadline_then_backs_off(monkeypatch, espeak):
    sock, url = blackhole()  # accepts the connection, never answers: dropped packets
    monkeypatch.setenv("https_proxy", url)
    try:
        chain = FailoverChain([GttsEngine(GttsSettings(timeout_s=5.0)), espeak],
                              FailoverSettings(timeout_s=0.4, backoff_s=30))
        t0 = time.monotonic()
        spoken = chain.synthesize("Are you there?")
        elapsed = time.monotonic() - t0
        assert spoken.engine == "espeak-ng"
        assert spoken.failed == ["gtts: timed out after 0.40 s"]
        assert 0.4 <= elapsed < 0.4 + 0.3
        t0 = time.monotonic()
        again = chain.synthesize("Still there?")
        assert time.monotonic() - t0 < 0.1, "gTTS in back-off is not waited for again"
        assert again.engine == "espeak-ng" and "back-off" in again.failed[0]
    finally:
        sock.close()


def test_back_off_expires_and_gtts_speaks_again(google, espeak):
    clock = Clock()
    chain = FailoverChain([GttsEngine(GttsSettings(timeout_s=5.0)), espeak],
                          FailoverSettings(timeout_s=0.3, backoff_s=30), clock=clock)
    google.mode = "hang"
    assert chain.synthesize("First.").engine == "espeak-ng"
    google.mode = "ok"
    clock.now += 10
    assert chain.synthesize("Second.").engine == "espeak-ng"  # still backing off
    assert not google.requests
    clock.now += 25
    spoken = chain.synthesize("Third.")
    assert spoken.engine == "gtts" and spoken.failed == []
    assert google.requests == [("Third.", "en")]


def test_bad_answer_moves_on_without_back_off(google, espeak):
    chain = FailoverChain([GttsEngine(), espeak])
    google.mode = "garbage"
    spoken = chain.synthesize("Hello.")
    assert spoken.engine == "espeak-ng" and "does not decode" in spoken.failed[0]
    assert not chain.in_backoff("gtts"), "the server answered: it is reachable"


def test_language_only_one_engine_speaks(google, espeak):
    chain = FailoverChain([GttsEngine(), espeak])
    spoken = chain.synthesize("Aloha", lang="haw")  # Hawaiian: espeak-ng yes, gTTS no
    assert spoken.engine == "espeak-ng" and "does not speak language 'haw'" in spoken.failed[0]
    assert not chain.in_backoff("gtts")


def test_nobody_speaks_it_is_one_clear_permanent_error(google, espeak):
    chain = FailoverChain([GttsEngine(), espeak])
    with pytest.raises(TtsError) as err:
        chain.synthesize("hello", lang="xx")
    assert err.value.permanent
    assert "gtts: gTTS does not speak language 'xx'" in str(err.value)
    assert "espeak-ng: espeak-ng does not speak language 'xx'" in str(err.value)
    with pytest.raises(TtsError, match="nothing to say"):
        chain.synthesize("  🙂 ")
