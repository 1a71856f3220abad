"""``assistant devices`` on the machine's virtual devices: a private PulseAudio with a speaker (null
sink) and a microphone (remapped source), and V4L2 cameras from a sysfs tree."""

import os
import shutil
import subprocess
import sys

import pytest

from assistant.devices import cameras

from .procs import REPO
from .test_hearing_pulse import PrivatePulse


def test_cameras_are_the_capture_nodes_of_v4l2(tmp_path):
    sysfs = tmp_path / "video4linux"
    for node, name, index in (("video0", "HD Pro Webcam C920", "0"), ("video1", "HD Pro Webcam C920", "1"), ("video2", "USB Cam", "0")):
        (sysfs / node).mkdir(parents=True)
        (sysfs / node / "name").write_text(name + "\n")
        (sysfs / node / "index").write_text(index + "\n")
    found = cameras(sysfs, tmp_path / "dev")
    assert [(c.name, c.config) for c in found] == [("HD Pro Webcam C920", f'[camera] device = "{tmp_path}/dev/video0"'),
                                                   ("USB Cam", f'[camera] device = "{tmp_path}/dev/video2"')]
    assert cameras(tmp_path / "nothing") == []


@pytest.mark.skipif(shutil.which("pulseaudio") is None, reason="needs pulseaudio and pulseaudio-utils (apt)")
def test_devices_lists_the_virtual_microphone_and_speaker_with_their_config_lines(tmp_path):
    pulse = PrivatePulse(tmp_path / "pulse")
    pulse.start()
    try:
        env = {**os.environ, "PULSE_SERVER": pulse.env["PULSE_SERVER"], "PYTHONPATH": str(REPO)}
        out = subprocess.run([sys.executable, "-m", "assistant", "devices"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    finally:
        pulse.kill()
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "kioskmic" in text and "PULSE_SOURCE=kioskmic" in text and "micsink" in text and "PULSE_SINK=micsink" in text
    assert "micsink.monitor" not in text  # a monitor is no microphone
    assert '[hearing] mic_device = "pulse"' in text
    # PortAudio sees the sound server through ALSA's pulse plugin, with the line that selects it.
    assert '[hearing] mic_device = "pulse"' in text.split("Microphones (PortAudio)")[1].split("Speakers")[0]
    assert '[voice.speaker] kind = "pyaudio", device = "pulse"' in text
    assert "Traceback" not in out.stderr and "ALSA lib" not in out.stdout + out.stderr
