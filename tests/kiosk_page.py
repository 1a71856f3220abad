"""A talking kiosk with its web page, and headless Chromium pages talking to it (bench/web.py and
tests/test_kiosk_page.py share this).

The kiosk is the real set of services on one bus (camera twin, hearing with the browser
microphone, voice on the WAV twin, renderer with the kiosk page, brain), started as
``python -m services.NAME``. Chromium plays a WAV file as its fake microphone
(``--use-file-for-fake-audio-capture``) into the page's open-mic mode.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--mute-audio", "--autoplay-policy=no-user-gesture-required",
                  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                  "--disable-renderer-backgrounding", "--disable-background-timer-throttling", "--disable-backgrounding-occluded-windows"]


SENTENCE = "what time is it"


def speech_wav(folder: Path) -> Path:
    """The visitor's sentence (espeak-ng, MBROLA us2 when installed) at 48 kHz with 0.5 s before and 3 s after."""
    import numpy as np
    import soundfile as sf

    from assistant import espeak

    raw = folder / "sentence.wav"
    for voice in ("mb-us2", "en-us"):
        out = espeak.write_wav(SENTENCE, raw, voice)
        if out.returncode == 0 and raw.exists() and raw.stat().st_size > 1000:
            break
    pcm, rate = sf.read(str(raw), dtype="float32")
    import soxr

    pcm = soxr.resample(pcm, rate, 48000)
    pcm = np.concatenate([np.zeros(24000, np.float32), pcm, np.zeros(144000, np.float32)])
    path = folder / "visitor.wav"
    sf.write(str(path), pcm, 48000, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class Kiosk:
    """Bus + services for a browser conversation, in a temporary runtime directory."""

    SERVICES = ("hearing", "voice", "brain", "renderer", "camera")

    def __init__(self, workdir: Path, *, width: int = 640, height: int = 360, fps: float = 30.0, services=SERVICES,
                 extra_env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.web_port, self.mic_port = free_port(), free_port()
        run = self.workdir / "run"
        run.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1",
                    "ASSISTANT_BUS__RUNTIME_DIR": str(run),
                    "ASSISTANT_RENDERER__SCREEN": '["web"]', "ASSISTANT_RENDERER__WEB_PORT": str(self.web_port),
                    "ASSISTANT_RENDERER__WIDTH": str(width), "ASSISTANT_RENDERER__HEIGHT": str(height), "ASSISTANT_RENDERER__FPS": str(fps),
                    "ASSISTANT_HEARING__MIC_DEVICE": "web", "ASSISTANT_HEARING__WEB_PORT": str(self.mic_port),
                    "ASSISTANT_VOICE__SPEAKER__KIND": "wav", "ASSISTANT_VOICE__SPEAKER__WAV_PATH": str(self.workdir / "voice.wav"),
                    "ASSISTANT_VOICE__ENGINES": '["espeak-ng"]', "ASSISTANT_VOICE__CACHE__PREWARM": "[]",
                    "ASSISTANT_CAMERA__GALLERY_DIR": str(self.workdir / "faces"),
                    "ASSISTANT_BRAIN__STORE_PATH": str(self.workdir / "brain.sqlite"), "ASSISTANT_BRAIN__ALWAYS_LISTEN": "true",
                    **(extra_env or {})}
        self.env.pop("NOTIFY_SOCKET", None)
        self.services = services
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.runtime_dir = run

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def _start(self, module: str) -> subprocess.Popen:
        from assistant.supervisor import set_nice

        name = module.rsplit('.', 1)[-1]
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        # Each service at the CPU priority ``assistant up`` and the systemd units give it.
        proc = subprocess.Popen([sys.executable, "-m", module], cwd=REPO, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=open(log, "w"), preexec_fn=lambda: set_nice(name))  # noqa: SIM115 - closed with the process
        self.procs.append(proc)
        return proc

    def start(self, timeout: float = 90.0) -> None:
        try:
            self._start_all(timeout)
        except BaseException:
            self.stop()  # a service that failed to start must not leave the others running
            raise

    def _start_all(self, timeout: float) -> None:
        self._start("services.bus")
        deadline = time.monotonic() + timeout  # one start deadline for the bus and the services (a loaded box is slow for both)
        while not (self.runtime_dir / "bus-sub.sock").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bus did not start:\n{self.tail_logs()}")
            time.sleep(0.05)
        for name in self.services:
            self._start(f"services.{name}")
        deadline = time.monotonic() + timeout
        for port in (self.web_port, self.mic_port):
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"nothing listens on {port}:\n{self.tail_logs()}") from None
                    for p in self.procs:
                        if p.poll() is not None:
                            raise RuntimeError(f"a service exited with {p.returncode}:\n{self.tail_logs()}")
                    time.sleep(0.2)

    def tail_logs(self, n: int = 8) -> str:
        out = []
        for log in self.logs:
            try:
                lines = log.read_text(errors="replace").splitlines()[-n:]
            except OSError:
                continue
            out.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def stats(self) -> dict:
        import json

        with urllib.request.urlopen(self.url + "stats.json", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        """Services first, the bus last (as ``assistant up`` does), so nobody loses the broker."""
        if not self.procs:
            return
        bus, *services = self.procs
        for group in (services, [bus]):
            for p in group:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in group:
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Browser:
    """Headless Chromium with ``pages`` tabs on ``url`` (and a fake microphone playing ``wav``);
    ``nice`` > 0 runs it at a lower CPU priority (a viewer that in real use is another machine)."""

    def __init__(self, url: str, pages: int = 1, wav: Path | None = None, profile: Path | None = None, nice: int = 0) -> None:
        exe = chromium()
        if exe is None:
            raise RuntimeError("chromium is not installed (apt-get install chromium)")
        self.profile = profile or Path(tempfile.mkdtemp(prefix="kiosk-chromium-"))
        self.debug_port = free_port()
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--remote-debugging-port={self.debug_port}", "--window-size=800,600"]
        if wav is not None:
            flags.append(f"--use-file-for-fake-audio-capture={wav}")
        urls = url if isinstance(url, list) else [url] * pages
        self.proc = subprocess.Popen([exe, *flags, urls[0]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=(lambda: os.nice(nice)) if nice else None)
        for more in urls[1:]:
            self.open(more)

    def open(self, url: str, timeout: float = 30.0) -> None:
        """Another tab (headless Chromium takes one address on its command line; the rest through DevTools)."""
        from urllib.parse import quote

        deadline = time.monotonic() + timeout
        while True:
            try:
                req = urllib.request.Request(f"http://127.0.0.1:{self.debug_port}/json/new?{quote(url, safe=':/?=&%')}", method="PUT")
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("chromium did not open another tab") from None
                time.sleep(0.3)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
