"""The simulated devices vanish and come back like real ones: each is plugged in while its device
node (a file) exists. Over the whole kiosk this is exercised in ``test_ops_faults``."""

import threading
import time

import numpy as np
import pytest

from hardware.camera import CameraError


def _until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_camera_twin_is_gone_while_its_node_is_missing(tmp_path, shared_data):
    from hardware.camera_sim import SimulatedCamera, build_scene

    node = tmp_path / "video0"
    node.touch()
    cam = SimulatedCamera(build_scene("plain", 320, 240, 60.0, faces_dir=shared_data / "talking" / "grid"),
                          realtime=False, device_node=node)
    cam.open()
    first = cam.read()
    node.unlink()
    with pytest.raises(CameraError, match="video0 does not exist"):
        cam.read()
    with pytest.raises(CameraError, match="unplugged"):
        cam.open()
    node.touch()
    cam.open()
    frame = cam.read()
    assert frame.index == first.index + 1 and frame.image.shape == first.image.shape


def test_microphone_twin_loses_the_audio_of_the_gap_and_comes_back(tmp_path):
    from hardware.microphone import RATE, FileMicrophone

    node = tmp_path / "mic"
    node.touch()
    chunks = []
    mic = FileMicrophone(None, chunk_ms=20, device_node=node, retry_s=0.05)
    mic.start(chunks.append)
    try:
        _until(lambda: len(chunks) >= 5)
        node.unlink()
        time.sleep(0.1)
        n = len(chunks)
        time.sleep(0.4)
        assert len(chunks) <= n + 1 and mic.errors == 1 and mic.reopens == 0
        node.touch()
        _until(lambda: mic.reopens == 1 and len(chunks) >= n + 5)
    finally:
        mic.stop()
    starts = np.array([c.t0_ns for c in chunks])
    steps = np.diff(starts)
    chunk_ns = 20 * 1_000_000_000 // 1000
    # Contiguous before and after, one jump of (roughly) the time it was gone: that audio is lost.
    assert np.sum(steps != chunk_ns) == 1 and 0.3e9 < steps.max() < 1.5e9
    assert all(len(c.pcm) == RATE // 50 for c in chunks)


def test_only_the_simulated_room_hears_the_assistants_speaker():
    # The hearing service tells every microphone what the speaker plays; a real one has nothing to do with it.
    from hardware.microphone import RATE, FileMicrophone, Microphone

    pcm = np.full(RATE // 10, 8000, np.int16)
    real = Microphone()
    real.speaker_play(pcm, 0)
    real.speaker_stop(50_000_000)
    assert real.on_text is None  # no text box: typed lines have nowhere to come from
    twin = FileMicrophone(None, speaker_leak_db=-15.0)
    twin.speaker_play(pcm, 0)
    twin.speaker_stop(50_000_000)  # cut half-way through
    assert [len(dry) for _, dry, _ in twin._played] == [RATE // 20]
    deaf = FileMicrophone(None)  # no simulated speaker: nothing leaks
    deaf.speaker_play(pcm, 0)
    assert deaf._played == []


def test_speaker_twin_takes_no_audio_while_gone_and_plays_when_back(tmp_path):
    from hardware.speaker import WavSinkSpeaker, read_recording

    node = tmp_path / "speaker"
    node.touch()
    calls = []
    lock = threading.Lock()

    def source(frames, leave_ns):
        with lock:
            calls.append(leave_ns)
        return np.full(frames, 1000, np.int16)

    spk = WavSinkSpeaker(tmp_path / "out.wav", sample_rate=16000, block_frames=160, device_node=node)
    spk.start(source)
    try:
        _until(lambda: len(calls) > 10)
        assert spk.available
        node.unlink()
        _until(lambda: not spk.available, 1.0)
        n = len(calls)
        time.sleep(0.3)
        assert len(calls) == n, "a vanished speaker asks for no audio"
        node.touch()
        _until(lambda: spk.available and spk.reopened == 1 and len(calls) > n + 10, 2.0)
    finally:
        spk.close()
    pcm, rate, leave = read_recording(tmp_path / "out.wav")
    assert rate == 16000 and np.all(pcm == 1000)
    assert np.diff(leave).max() > 0.25e9, "the gap is in the device's time line"
    # The time line is kept as runs of blocks on one clock, not a row per block (which grew by
    # 0.8 MiB a minute): a new run only where the clock restarted.
    rows = spk.timeline
    # Blocks held by the device when it vanished were never heard, nor the last one at close.
    assert len(calls) - 4 <= len(rows) <= len(calls)
    assert len(spk._runs) <= 1 + spk.reopened + spk.underruns + spk.late_silent, (len(spk._runs), spk.reopened, spk.underruns)
    steps = np.diff(rows[:, 1])
    assert np.sum(steps != 10_000_000) == len(spk._runs) - 1  # 160 samples at 16 kHz = 10 ms, but at the restarts
