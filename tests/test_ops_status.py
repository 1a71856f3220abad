"""The status page: the board on its own, then the real service over the bus, HTTP, a token,
Prometheus metrics, and the page itself rendered by headless Chromium (screenshot)."""

import json
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from assistant.messages import (Exposure, Face, FaceLandmarks, Faces, Header, Heartbeat, Preview, Received, RendererStats,
                                Reply, SystemState, Transcript, TurnTrace)
from services.ops.board import StatusBoard

from .mailservers import free_port
from .procs import wait_for

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?[0-9.e+-]+$')


def _rx(msg, turn="", ts=0):
    return Received(Header(msg.TYPE, 1, 0, ts, "test", turn), msg)


def _hb(name, pid, state="ready"):
    return _rx(Heartbeat(service=name, state=state, pid=pid, started_ns=0, counters={"in": 1, "out": 2}))


def _check_exposition(text):
    """Every line is a HELP, a TYPE or a valid sample; each metric has one TYPE before its samples."""
    typed = set()
    for line in text.strip().splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert name not in typed and kind in ("gauge", "counter"), line
            typed.add(name)
            continue
        assert SAMPLE.match(line), line
        assert line.split("{")[0].split(" ")[0] in typed, line


def test_board_counts_restarts_marks_silent_services_down_and_exports_metrics():
    board = StatusBoard(history=3, stale_after_s=3.0)
    board.ingest(_hb("voice", 10), now_ns=0)
    board.ingest(_hb("voice", 11), now_ns=int(1e9))  # a new process: one restart
    board.ingest(_hb("brain", 20), now_ns=0)
    snap = {s["name"]: s for s in board.snapshot(now_ns=int(3.5e9))["services"]}
    assert snap["voice"]["up"] and snap["voice"]["restarts"] == 1 and snap["voice"]["state"] == "ready"
    assert not snap["brain"]["up"] and snap["brain"]["state"] == "down"
    for i in range(5):
        board.ingest(_rx(Transcript(text=f"q{i}", confidence=0.9, engine="x", speech_start_ns=0, speech_end_ns=0), f"t{i}"))
    board.ingest(_rx(TurnTrace(speech_end_ns=10**9, transcript_ns=10**9 + 2 * 10**8, reply_ns=10**9 + 3 * 10**8), "t4"))
    snap = board.snapshot(now_ns=int(3.5e9))
    assert [t["text"] for t in snap["transcripts"]] == ["q4", "q3", "q2"]  # newest first, history kept
    assert snap["turns"][0] == {"turn": "t4", "transcript": 200.0, "reply": 300.0, "first_sound": None, "first_mouth": None}
    text = board.metrics(now_ns=int(3.5e9))
    _check_exposition(text)
    assert 'assistant_service_up{service="brain"} 0' in text and 'assistant_service_restarts_total{service="voice"} 1' in text
    assert 'assistant_turn_latency_seconds{stage="reply"} 0.3' in text and "first_sound" not in text


def test_board_shows_which_devices_are_there():
    board = StatusBoard(stale_after_s=3.0)
    beat = lambda name, counters: _rx(Heartbeat(service=name, state="ready", pid=1, started_ns=0, counters=counters))  # noqa: E731
    board.ingest(beat("camera", {"camera_available": 1}), now_ns=int(1e9))
    board.ingest(beat("voice", {"speaker_available": 0}), now_ns=int(1e9))
    board.ingest(beat("hearing", {"mic_available": 1}), now_ns=int(1e9))
    assert board.snapshot(now_ns=int(2e9))["devices"] == {"camera": True, "microphone": True, "speaker": False}
    text = board.metrics(now_ns=int(2e9))
    _check_exposition(text)
    assert 'assistant_device_available{device="speaker"} 0' in text and 'assistant_device_available{device="camera"} 1' in text
    # A device whose service has gone silent is unknown, not "there".
    board.ingest(beat("voice", {"speaker_available": 1}), now_ns=int(3e9))
    assert board.snapshot(now_ns=int(5e9))["devices"] == {"camera": None, "microphone": None, "speaker": True}


def test_board_survives_a_landmark_payload_that_does_not_match_its_shape():
    board = StatusBoard()
    board.ingest(_rx(FaceLandmarks(frame=1, shown_ns=0, shape=(68, 2), points=b"\0" * 10)))
    assert board.snapshot()["face"]["points"] == []
    board.ingest(_rx(SystemState(service='we"ird\nname', state="failed", pid=3, detail="boom")))
    _check_exposition(board.metrics())


def _get(url, token=None, timeout=5.0):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type"), r.read()


def _feed(client, jpeg):
    now = time.monotonic_ns()
    client.publish(Transcript(text="what time is it <b>now</b>", confidence=0.8, engine="pocketsphinx", speech_start_ns=now, speech_end_ns=now), turn="t1")
    client.publish(Reply(text="It is three o'clock.", skill="time"), turn="t1")
    client.publish(TurnTrace(speech_end_ns=now, transcript_ns=now + 3 * 10**8, reply_ns=now + 35 * 10**7, first_sound_ns=now + 7 * 10**8, first_mouth_ns=now + 72 * 10**7), turn="t1")
    client.publish(Preview(frame_ns=now, jpeg=jpeg))
    client.publish(Faces(frame_ns=now, width=640, height=480, faces=[Face(track_id=1, box=(330, 60, 150, 180), distance_m=0.8, engaged=True, identity="Ada", luminance=112)]))
    client.publish(Exposure(exposure=120, gain=1.5, metered_luminance=108, target_luminance=110, mode="face"))
    ang = np.linspace(0, 2 * np.pi, 68)
    pts = np.stack([640 + 150 * np.cos(ang), 360 + 200 * np.sin(ang)], 1).astype("<f4")
    client.publish(FaceLandmarks(frame=10, shown_ns=now, shape=(68, 2), points=pts.tobytes(), mouth_open=0.2, utterance_id="u1"))
    client.publish(RendererStats(fps=29.8, av_offset_ms=12.0, dropped_frames=0, frames=300, width=1280, height=720, driver="viseme"))


@pytest.fixture
def jpeg():
    import cv2
    from skimage.data import astronaut

    return cv2.imencode(".jpg", cv2.cvtColor(cv2.resize(astronaut(), (320, 240)), cv2.COLOR_RGB2BGR))[1].tobytes()


def _start_ops(procs, port, **env):
    procs.start("services.ops", env={"ASSISTANT_OPS__PORT": str(port), **env})
    watcher = procs.client([SystemState.TYPE, Heartbeat.TYPE], source="ops-test")
    wait_for(watcher, lambda rx: rx.msg.service == "ops" and rx.msg.state == "ready", 20)
    return watcher


def test_status_page_serves_live_bus_data_json_preview_and_metrics(procs, jpeg):
    procs.broker()
    port = free_port()
    watcher = _start_ops(procs, port)
    _feed(watcher, jpeg)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status = json.loads(_get(base + "/api/status")[2])
        if status["replies"] and status["face"].get("fps") and {"bus", "ops"} <= {s["name"] for s in status["services"]}:
            break
        time.sleep(0.2)
    assert status["transcripts"][0]["text"] == "what time is it <b>now</b>"
    assert status["replies"][0]["text"] == "It is three o'clock."
    assert status["camera"]["faces"][0]["identity"] == "Ada" and status["camera"]["exposure"]["mode"] == "face"
    assert len(status["face"]["points"]) == 68 and status["turns"][0]["first_sound"] == 700.0
    assert _get(base + "/preview.jpg")[1:] == ("image/jpeg", jpeg)
    code, ctype, body = _get(base + "/metrics")
    assert ctype.startswith("text/plain; version=0.0.4")
    _check_exposition(body.decode())
    assert 'assistant_service_ready{service="bus"} 1' in body.decode()
    assert "assistant_renderer_fps 29.8" in body.decode()
    with pytest.raises(urllib.error.HTTPError) as err:
        _get(base + "/nope")
    assert err.value.code == 404


def test_a_token_is_required_when_set_and_a_public_address_needs_one(procs, tmp_path):
    procs.broker()
    port = free_port()
    (tmp_path / "token").write_text("s3cret-token\n")
    _start_ops(procs, port, ASSISTANT_OPS__TOKEN_FILE=str(tmp_path / "token"))
    for path in ("/", "/api/status", "/metrics", "/preview.jpg"):
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(f"http://127.0.0.1:{port}{path}")
        assert err.value.code == 401
        with pytest.raises(urllib.error.HTTPError):
            _get(f"http://127.0.0.1:{port}{path}", token="wrong")
    assert _get(f"http://127.0.0.1:{port}/metrics", token="s3cret-token")[0] == 200
    assert _get(f"http://127.0.0.1:{port}/api/status?token=s3cret-token")[0] == 200
    public = procs.start("services.ops", env={"ASSISTANT_OPS__HOST": "0.0.0.0", "ASSISTANT_OPS__PORT": str(free_port())})
    _, err = public.communicate(timeout=30)
    assert public.returncode == 1
    assert "needs a token" in err and "ops.token_file" in err and "Traceback" not in err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_headless_chromium_renders_the_page(procs, jpeg, tmp_path):
    import cv2

    procs.broker()
    port = free_port()
    watcher = _start_ops(procs, port)
    _feed(watcher, jpeg)
    url = f"http://127.0.0.1:{port}/"
    wait_for_reply = time.monotonic() + 10
    while not json.loads(_get(url + "api/status")[2])["replies"] and time.monotonic() < wait_for_reply:
        time.sleep(0.2)
    flags = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000", "--virtual-time-budget=4000"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=90).stdout
    assert 'data-loaded="1"' in dom  # the page's script fetched /api/status and drew it
    assert "what time is it &lt;b&gt;now&lt;/b&gt;" in dom and "<b>now</b>" not in dom  # visitor text shown, never as HTML
    assert "It is three o'clock." in dom and "exposure 120, gain 1.5" in dom and "29.8 fps" in dom
    assert re.search(r'<span class="state ready">ready</span>', dom)
    shot = tmp_path / "status.png"
    subprocess.run([*flags, f"--screenshot={shot}", url], capture_output=True, timeout=90)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (1000, 1400)
    # The camera preview (the astronaut's orange suit) is on the page.
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    orange = cv2.inRange(hsv, (5, 120, 120), (20, 255, 255))
    assert orange.sum() / 255 > 2000
