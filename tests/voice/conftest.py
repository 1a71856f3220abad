"""Fixtures for the voice tests: a real espeak-ng engine and a local Google TTS stand-in."""

from __future__ import annotations

import pytest

from fake_google import FakeGoogle


@pytest.fixture(scope="session")
def espeak():
    """The espeak-ng engine (bundled libespeak-ng), shared by the session."""
    from services.voice.tts.espeak import EspeakEngine

    return EspeakEngine()


@pytest.fixture(scope="session")
def _google_server(tmp_path_factory, espeak):
    def speak(text):
        s = espeak.synthesize(text)
        return s.pcm, s.sample_rate

    server = FakeGoogle(tmp_path_factory.mktemp("google"), speak)
    yield server
    server.close()


@pytest.fixture
def google(_google_server, monkeypatch):
    """gTTS pointed at the local server through ``https_proxy``; reset to answering normally."""
    _google_server.mode = "ok"
    _google_server.requests.clear()
    _google_server.paths.clear()
    for var in ("https_proxy", "HTTPS_PROXY"):
        monkeypatch.setenv(var, _google_server.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return _google_server


@pytest.fixture
def offline(monkeypatch):
    """No proxy: gTTS tries the real Google, which this machine cannot reach."""
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
