"""The voice service playing through PyAudio -> ALSA pulse plugin -> a PulseAudio null sink (started here)."""

from __future__ import annotations

import time

import numpy as np
import pytest

import pulse
from assistant.messages import Stop, Say, Utterance
from test_voice_service import Voice

pytestmark = pytest.mark.skipif(not pulse.available(), reason="needs pulseaudio and pulseaudio-utils")


@pytest.fixture
def server(tmp_path_factory):
    pytest.importorskip("pyaudio", reason="needs pyaudio (apt-get install portaudio19-dev)")
    srv = pulse.PulseServer(tmp_path_factory.mktemp("pulse"))
    srv.start()
    yield srv
    srv.stop()


def _match(recorded: np.ndarray, played: np.ndarray) -> tuple[float, int]:
    """(peak normalised cross-correlation, index in ``recorded`` where ``played`` starts)."""
    from scipy.signal import fftconvolve

    a, b = recorded.astype(np.float64), played.astype(np.float64)
    corr = fftconvolve(a, b[::-1], mode="valid")
    energy = np.sqrt(fftconvolve(a**2, np.ones(len(b)), mode="valid").clip(1e-9) * np.sum(b**2))
    score = corr / energy
    return float(score.max()), int(score.argmax())


def _at_48k(utt: Utterance) -> np.ndarray:
    import soxr

    own = np.frombuffer(utt.pcm, dtype="<i2").astype(np.float32)
    return np.round(soxr.resample(own, utt.sample_rate, 48000)).astype(np.int16)


def test_service_speaks_through_pulseaudio_and_stops(procs, tmp_path, server):
    rec = server.record()
    v = Voice(procs, tmp_path, PULSE_SERVER=server.server, ASSISTANT_VOICE__SPEAKER__KIND="pyaudio",
              ASSISTANT_VOICE__SPEAKER__DEVICE="pulse", ASSISTANT_VOICE__SPEAKER__SAMPLE_RATE="48000",
              ASSISTANT_VOICE__SPEAKER__BLOCK_FRAMES="480")
    v.client.publish(Say(text="Testing the real speaker.", say_id="a"))
    first = v.wait(lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == "a").msg
    assert v.done("a").status == "finished"

    v.client.publish(Say(text="This long sentence is cut off by a barge in long before it could end on its own.",
                         say_id="b"))
    long = v.wait(lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == "b").msg
    time.sleep(max(0.0, (long.play_at_ns - time.monotonic_ns()) / 1e9) + 0.6)
    t_stop = time.monotonic_ns()
    v.client.publish(Stop(reason="barge-in"))
    assert v.done("b").status == "interrupted"
    time.sleep(0.5)
    recorded = rec.stop()

    score, _ = _match(recorded, _at_48k(first))
    assert score > 0.9, "the first reply reached the sink intact"
    played = _at_48k(long)
    score, start = _match(recorded, played[: 48000 // 4])
    assert score > 0.9, "the long reply started playing"
    loud = np.nonzero(np.abs(recorded[start:].astype(np.int32)) > 200)[0]
    heard_s = loud[-1] / 48000  # the sink plays in real time: samples are seconds
    stop_ms = (heard_s - (t_stop - long.play_at_ns) / 1e9) * 1000
    print(f"stop latency through PulseAudio: {stop_ms:.1f} ms")
    # The speaker closes the PortAudio stream (which discards what it and the server hold).
    assert -20 <= stop_ms <= 20, f"{stop_ms:.1f} ms"
