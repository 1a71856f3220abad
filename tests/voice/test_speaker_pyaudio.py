"""Real playback through PyAudio -> ALSA pulse plugin -> a PulseAudio null sink started here."""

from __future__ import annotations

import time

import numpy as np
import pytest

import pulse

pytestmark = pytest.mark.skipif(not pulse.available(), reason="needs pulseaudio and pulseaudio-utils")


@pytest.fixture
def server(tmp_path_factory, monkeypatch):
    pytest.importorskip("pyaudio", reason="needs pyaudio (apt-get install portaudio19-dev)")
    srv = pulse.PulseServer(tmp_path_factory.mktemp("pulse"))
    srv.start()
    monkeypatch.setenv("PULSE_SERVER", srv.server)  # read by libpulse inside PortAudio's ALSA plugin
    yield srv
    srv.stop()


def _contains(recorded: np.ndarray, played: np.ndarray) -> float:
    """Peak normalised cross-correlation of the played speech inside the recording."""
    from scipy.signal import fftconvolve  # scipy comes with scikit-image

    assert len(recorded) > len(played), f"recorded {len(recorded)} samples, played {len(played)}"
    a = recorded.astype(np.float64)
    b = played.astype(np.float64)
    corr = fftconvolve(a, b[::-1], mode="valid")
    energy = np.sqrt(fftconvolve(a**2, np.ones(len(b)), mode="valid").clip(1e-9) * np.sum(b**2))
    return float(np.max(corr / energy))


def _speech_48k(espeak, text):
    import soxr

    s = espeak.synthesize(text)
    return np.round(soxr.resample(s.pcm.astype(np.float32), s.sample_rate, 48000)).astype(np.int16)


def test_plays_through_the_null_sink_and_reopens(server, espeak):
    from hardware.pyaudio_speaker import PyAudioSpeaker
    from services.voice.player import Player

    # A device that is not there is waited for, not fatal: the reason names what there is.
    missing = PyAudioSpeaker(device="no such speaker", retry_every_s=0.2)
    missing.start(lambda n, t: np.zeros(n, np.int16))
    try:
        time.sleep(0.5)
        assert not missing.available and "outputs are: " in missing.last_error and "pulse" in missing.last_error
    finally:
        missing.close()
    speech = _speech_48k(espeak, "Testing the real speaker.")
    speaker = PyAudioSpeaker(device="pulse", sample_rate=48000, block_frames=480)
    player = Player(speaker)
    try:
        assert 0 < speaker.output_latency_s < 0.2
        rec = server.record()
        time.sleep(0.5)
        started = []
        play_at = player.earliest_play_at_ns() + 50_000_000
        player.schedule("u1", speech, 48000, play_at, on_start=lambda u, ns: started.append(ns))
        time.sleep(len(speech) / 48000 + 1.0)
        recorded = rec.stop()
        assert started and abs(started[0] - play_at) < 1_000_000, "first sample scheduled at play_at"
        # 1.0 is a perfect copy; a glitch from a loaded CPU costs a little, a broken path ~0.
        assert _contains(recorded, speech) > 0.75, "the speech reached the sink intact"

        # The sound server goes away and comes back: the speaker reopens by itself.
        server.stop()
        time.sleep(0.8)
        server.start()
        deadline = time.monotonic() + 8
        while speaker.reopened == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert speaker.reopened >= 1
        time.sleep(0.5)
        rec = server.record()
        time.sleep(0.5)
        player.schedule("u2", speech, 48000, player.earliest_play_at_ns())
        time.sleep(len(speech) / 48000 + 1.0)
        assert _contains(rec.stop(), speech) > 0.75
    finally:
        player.close()
