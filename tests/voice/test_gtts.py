"""gTTS against a local server that speaks Google's protocol (no network), and offline."""

from __future__ import annotations

import time

import numpy as np
import pytest

from fake_google import blackhole, decode_google_lang
from services.voice.tts.base import EngineUnavailable, TtsError
from assistant.config.schema import VoiceGttsSettings as GttsSettings
from services.voice.tts.gtts_engine import GttsEngine


def test_speaks_through_google_protocol(google, espeak):
    engine = GttsEngine(GttsSettings(tld="co.uk"))
    text = ("Good morning! This reply is long enough that gTTS has to send it to the server in several "
            "pieces, one after the other, because each request carries at most one hundred characters.")
    s = engine.synthesize(text)
    assert s.engine == "gtts" and s.voice == "en-co.uk" and s.sample_rate == 24000
    assert len(google.requests) >= 2, "long text goes out in several requests"
    assert google.requests[0][0].startswith("Good morning!")
    assert all(lang == "en" for _, lang in google.requests)
    assert decode_google_lang(google.paths) and "translate.google.co.uk" in google.paths[0]
    # Every part is decoded, not only the first MP3: the audio is as long as all the parts
    # (MP3 adds ~50 ms of padding per part).
    expected = sum(espeak.synthesize(t).duration_s for t, _ in google.requests)
    assert s.duration_s == pytest.approx(expected, abs=0.08 * len(google.requests))
    assert np.abs(s.pcm).max() > 3000


def test_language_passed_and_checked(google):
    engine = GttsEngine()
    engine.synthesize("Dobrý den", lang="cs")
    assert google.requests[-1] == ("Dobrý den", "cs")
    with pytest.raises(TtsError, match="does not speak language 'xx'") as err:
        engine.synthesize("hello", lang="xx")
    assert err.value.permanent and not google.requests[1:]


def test_server_errors_are_tts_errors(google):
    engine = GttsEngine()
    google.mode = "http500"
    with pytest.raises(TtsError, match="500") as err:
        engine.synthesize("hello")
    assert not isinstance(err.value, EngineUnavailable)
    google.mode = "garbage"
    with pytest.raises(TtsError, match="does not decode"):
        engine.synthesize("hello")


def test_unreachable_network_fails_fast(offline):
    t0 = time.monotonic()
    with pytest.raises(EngineUnavailable):
        GttsEngine(GttsSettings(timeout_s=1.0)).synthesize("hello")
    assert time.monotonic() - t0 < 1.5


def test_dropped_packets_end_at_the_timeout(monkeypatch):
    sock, url = blackhole()
    try:
        monkeypatch.setenv("https_proxy", url)
        t0 = time.monotonic()
        with pytest.raises(EngineUnavailable):
            GttsEngine(GttsSettings(timeout_s=0.3)).synthesize("hello")
        assert 0.25 < time.monotonic() - t0 < 2.0
    finally:
        sock.close()
