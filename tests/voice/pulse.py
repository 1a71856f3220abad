"""A private PulseAudio server with a null sink, for playing through PyAudio in tests.

Started as root in user mode with its own runtime folder and socket, so it never meets another
PulseAudio on the machine. A null sink idles with a 2 s latency and keeps that until its next
wake-up, which stalls a newly connected low-latency client for up to 2 s; a ``pacat`` of
silence at 10 ms latency keeps the sink in low-latency mode for the whole test, and ``start``
waits until the sink has drained what it rendered ahead before that.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

SINK = "kiosk_speaker"


class PulseServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.socket = folder / "native"
        self.server = f"unix:{self.socket}"
        self.env = {**os.environ, "PULSE_SERVER": self.server, "HOME": str(folder),
                    "PULSE_RUNTIME_PATH": str(folder / "run"), "PULSE_STATE_PATH": str(folder / "state")}
        self._procs: list[subprocess.Popen] = []

    def start(self) -> None:
        daemon = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "--system=false", "-F", "/dev/null",
             f"--load=module-native-protocol-unix auth-anonymous=1 socket={self.socket}",
             f"--load=module-null-sink sink_name={SINK} rate=48000 channels=1"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._procs.append(daemon)
        deadline = time.monotonic() + 10
        while subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode != 0:
            if time.monotonic() > deadline or daemon.poll() is not None:
                raise RuntimeError("pulseaudio did not start")
            time.sleep(0.05)
        self._procs.append(subprocess.Popen(
            ["pacat", "-p", "--latency-msec=10", "--raw", "--format=s16le", "--channels=1", "--rate=48000",
             f"--device={SINK}", "/dev/zero"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        # The sink rendered 2 s ahead before the anchor connected; wait until that has drained.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            info = subprocess.run(["pactl", "list", "sinks"], env=self.env, capture_output=True, text=True).stdout
            m = re.search(r"Latency: (\d+) usec", info)
            if m and int(m.group(1)) < 50_000:
                return
            time.sleep(0.1)
        raise RuntimeError("the null sink did not reach low latency")

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs.clear()
        self.socket.unlink(missing_ok=True)

    def record(self) -> "Recording":
        """Start recording what the sink plays (its monitor), 48 kHz mono."""
        return Recording(self)


class Recording:
    """``parec`` of the sink's monitor into a file (a pipe would fill up and stall it)."""

    def __init__(self, server: PulseServer) -> None:
        self.path = server.folder / f"rec-{time.monotonic_ns()}.raw"
        self._out = open(self.path, "wb")  # noqa: SIM115 - parec's stdout until stop()
        self._proc = subprocess.Popen(["parec", f"--device={SINK}.monitor", "--raw", "--format=s16le",
                                       "--channels=1", "--rate=48000", "--latency-msec=10"],
                                      env=server.env, stdout=self._out)

    def stop(self):
        """End the recording; its samples as int16."""
        import numpy as np

        self._proc.terminate()
        self._proc.wait(timeout=5)
        self._out.close()
        data = self.path.read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def available() -> bool:
    return all(shutil.which(p) for p in ("pulseaudio", "pactl", "pacat", "parec"))
