"""Real capture: the hearing service reads a PulseAudio virtual microphone through PyAudio
(PortAudio -> ALSA pulse plugin), while paplay speaks into it; then the audio server dies and
comes back, and the service hears again without a restart."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from assistant.messages import Heartbeat, SystemState, Transcript
from bench.lib.wer import wer

from .hearing_audio import synth
from .procs import wait_for

pytestmark = pytest.mark.skipif(shutil.which("pulseaudio") is None or shutil.which("paplay") is None,
                                reason="needs pulseaudio and pulseaudio-utils (apt), and libasound2-plugins")


class PrivatePulse:
    """A PulseAudio daemon of our own (own socket, no D-Bus), with a null sink whose monitor is
    remapped into a microphone source: what is played into ``micsink`` is captured from ``kioskmic``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.socket = root / "native"
        self.proc: subprocess.Popen | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def env(self) -> dict[str, str]:
        return {"PULSE_SERVER": f"unix:{self.socket}", "PULSE_SOURCE": "kioskmic"}

    def start(self) -> None:
        env = {"HOME": str(self.root), "PULSE_RUNTIME_PATH": str(self.root / "run"), "PULSE_STATE_PATH": str(self.root / "state"),
               "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no", "--disable-shm=yes",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1",
             "-L", "module-null-sink sink_name=micsink",
             "-L", "module-remap-source source_name=kioskmic master=micsink.monitor"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env={**env, **self.env}, capture_output=True).returncode != 0:
            assert self.proc.poll() is None and time.monotonic() < deadline, "pulseaudio did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def play(self, wav: Path) -> None:
        subprocess.run(["paplay", "-d", "micsink", str(wav)], env={"PATH": "/usr/bin:/bin", **self.env}, check=True, timeout=30)


@pytest.fixture
def pulse(tmp_path):
    p = PrivatePulse(tmp_path / "pulse")
    p.start()
    yield p
    p.kill()


def next_transcript(client, timeout=10.0):
    return wait_for(client, lambda rx: isinstance(rx.msg, Transcript), timeout).msg.text


def test_capture_from_pulseaudio_survives_the_device_vanishing(procs, pulse, tmp_path):
    first, second = "where is the meeting room", "thank you very much"
    wav1, wav2 = tmp_path / "a.wav", tmp_path / "b.wav"
    synth(first, wav1), synth(second, wav2)
    procs.broker()
    client = procs.client([Transcript.TYPE, SystemState.TYPE, Heartbeat.TYPE])
    proc = procs.start("services.hearing", env={**pulse.env, "ASSISTANT_HEARING__MIC_DEVICE": "pulse", "ASSISTANT_HEARING__MIC_RETRY_S": "0.3"})
    wait_for(client, lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "hearing" and rx.msg.state == "ready", 30)
    wait_for(client, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "hearing" and rx.msg.counters.get("audio_s", 0) > 0.5)
    pulse.play(wav1)
    assert wer(first, next_transcript(client)) <= 0.2

    pulse.kill()  # the device vanishes
    wait_for(client, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "hearing" and rx.msg.counters.get("mic_errors", 0) >= 1)
    time.sleep(1.0)
    assert proc.poll() is None
    pulse.start()  # and comes back
    wait_for(client, lambda rx: isinstance(rx.msg, Heartbeat) and rx.msg.service == "hearing" and rx.msg.counters.get("mic_reopens", 0) >= 1, 15)
    time.sleep(0.5)
    pulse.play(wav2)
    assert wer(second, next_transcript(client)) <= 0.2
