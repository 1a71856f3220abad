"""Screen outputs: a kiosk window under Xvfb, the web page in headless Chromium, MP4 with audio."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from hardware.screen import NullScreen, ScreenError, VideoRecorder, WebScreen, open_screen
from .renderer_helpers import RmsDriver, default_avatar, load_speech
from services.renderer.idle import IdleLife
from assistant.config.schema import RendererSettings
from services.renderer.synth import FaceSynth

REPO = Path(__file__).resolve().parents[1]

_WINDOW_CHILD = """
import sys, time
from tests.renderer_helpers import default_avatar
from services.renderer.idle import IdleLife
from assistant.config.schema import RendererSettings
from services.renderer.synth import FaceSynth
from hardware.screen import WindowScreen
synth = FaceSynth(default_avatar(), RendererSettings(width=1280, height=720))
screen = WindowScreen("kiosk-test")
frame = synth.render()
for k in range(400):
    screen.show(frame, time.monotonic_ns())
    if k == 20:
        print("ready", screen.size, flush=True)
    time.sleep(0.02)
screen.close()
"""


@pytest.fixture
def xvfb(tmp_path):
    """A private X server (1280x720); skipped when Xvfb is not installed."""
    exe = shutil.which("Xvfb")
    if exe is None:
        pytest.skip("Xvfb not installed (apt-get install xvfb)")
    r, w = os.pipe()
    proc = subprocess.Popen([exe, "-displayfd", str(w), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
                            pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    with os.fdopen(r) as f:
        display = ":" + f.readline().strip()
    yield display
    proc.terminate()
    proc.wait(5)


def test_window_fills_the_screen_under_xvfb(xvfb, tmp_path):
    if shutil.which("import") is None:
        pytest.skip("ImageMagick's import not installed (apt-get install imagemagick)")
    env = dict(os.environ, DISPLAY=xvfb, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'tests'}", QT_QPA_PLATFORM="xcb")
    child = subprocess.Popen([sys.executable, "-c", _WINDOW_CHILD], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("ready"), child.stderr.read()
        assert "(1280, 720)" in line  # sized to the X screen
        time.sleep(0.3)
        shot = tmp_path / "shot.png"
        subprocess.run(["import", "-display", xvfb, "-window", "root", str(shot)], check=True, timeout=20)
    finally:
        child.kill()
        child.wait()
    img = cv2.imread(str(shot))
    expected = FaceSynth(default_avatar(), RendererSettings(width=1280, height=720)).render()
    assert img.shape == expected.shape
    diff = np.abs(img.astype(int) - expected).mean()
    assert diff < 8, f"screenshot differs from the rendered face by {diff:.1f} grey levels"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium not installed (apt-get install chromium)")


def test_web_page_shows_a_moving_face_in_headless_chromium(shared_data, tmp_path):
    _chromium()  # skips the test where no Chromium is installed
    synth = FaceSynth(default_avatar(), RendererSettings(width=640, height=360, zoom=2.0))
    pcm, sr = load_speech(shared_data, 0)
    driver = RmsDriver()
    mouths = driver.drive(pcm, sr, 30.0)
    life = IdleLife(seed=5)
    web = WebScreen(port=0)
    web.audio(pcm, sr, time.monotonic_ns() + 100_000_000, "utt-1")
    stop = threading.Event()

    def feed():  # the live face: speech (looped) with idle life, rendered as time passes
        start = time.monotonic()
        while not stop.is_set():
            t = time.monotonic() - start
            state = life.step(t, speaking=True)
            web.show(synth.render(mouths[int(t * 30) % len(mouths)], state.blink, state.gaze, state.head),
                     time.monotonic_ns())
            time.sleep(1 / 30)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    # The page draws on a canvas from its WebSocket, which a one-shot --screenshot run does not
    # wait for: a live headless Chromium reports what it drew (fps, and the look of the face).
    from .kiosk_page import Browser

    page = Browser(web.url)
    try:
        deadline = time.monotonic() + 30
        stats = web.page_stats()
        while time.monotonic() < deadline and len(stats["looks"]) < 4:
            time.sleep(0.5)
            stats = web.page_stats()
        import urllib.request

        with urllib.request.urlopen(web.url + "audio.wav", timeout=5) as resp:
            assert resp.read(4) == b"RIFF"
    finally:
        page.close()
        stop.set()
        thread.join()
        web.close()
    looks = np.array(stats["looks"])
    assert len(looks) >= 4, stats
    assert looks[:, 1].min() > 20, "blank face"
    assert np.ptp(looks[:, 0]) > 0.2 or np.ptp(looks[:, 1]) > 0.2, f"the face did not move: {looks}"
    assert max(stats["fps"]) > 10, stats["fps"]


def test_mp4_has_video_and_audio_of_equal_length(shared_data, tmp_path):
    import av

    pcm, sr = load_speech(shared_data, 1)
    synth = FaceSynth(default_avatar(), RendererSettings(width=640, height=360, zoom=2.0))
    driver = RmsDriver()
    mouths = driver.drive(pcm, sr, 30.0)
    path = tmp_path / "face.mp4"
    rec = VideoRecorder(path, fps=30.0)
    t0 = 1_000_000_000_000
    rec.audio(pcm, sr, t0 + 500_000_000)  # speech starts half a second in
    n = len(mouths) + 30
    for k in range(n):
        m = mouths[k - 15] if 15 <= k < 15 + len(mouths) else None
        jitter = 3_000_000 if k % 5 == 0 else 0
        if k == 40:
            continue  # a dropped frame: its slot repeats the previous picture
        rec.show(synth.render(m), t0 + round(k * 1e9 / 30) + jitter)
    rec.close()
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name in ("h264", "mpeg4")
        v_len = float(v.duration * v.time_base)
        a_len = float(a.duration * a.time_base)
        assert v.frames == n
        assert abs(v_len - a_len) <= 1 / 30, (v_len, a_len)
        audio = np.concatenate([f.to_ndarray().ravel() for f in c.decode(audio=0)])
    rate = 48_000
    assert np.abs(audio[: int(0.4 * rate)]).max() < 0.01  # silence before the speech
    assert np.sqrt(np.mean(audio[int(0.6 * rate): int(2.0 * rate)] ** 2)) > 0.01  # then speech


def test_headless_and_bad_outputs():
    if not os.environ.get("DISPLAY"):
        assert isinstance(open_screen("auto"), NullScreen)
    with pytest.raises(ScreenError, match="unknown screen"):
        open_screen("hologram")
    with pytest.raises(ScreenError, match="cannot write"):
        VideoRecorder("/proc/forbidden/face.mp4")
