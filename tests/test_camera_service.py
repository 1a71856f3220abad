"""The camera service over the real bus, on the simulated camera: a visitor walks in, is recognised,
engages and leaves; the CLI enrols from photos; a vanished camera is reopened."""

import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from assistant.messages import Exposure, Faces, Heartbeat, Person, Preview

from .procs import REPO, wait_for


@pytest.fixture(scope="module")
def alice_photos(tmp_path_factory, shared_data):
    """Photos of the GRID speaker 'bbaf2n' taken from frames the simulated scene never shows."""
    from hardware.camera_sim import ENROL_FRAMES, clip_frames

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for i, img in enumerate(clip_frames(shared_data / "talking" / "grid" / "bbaf2n.mpg", ENROL_FRAMES)[:3]):
        paths.append(folder / f"alice{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    (folder / "notes.txt").write_text("not an image")
    cv2.imwrite(str(folder / "wall.png"), np.full((200, 200, 3), 128, np.uint8))
    return folder, paths


def _enroll(env, *args):
    return subprocess.run([sys.executable, "-m", "assistant", "enroll", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_enroll_cli_rejects_bad_photos_and_names(procs, tmp_path, alice_photos):
    folder, photos = alice_photos
    gallery = tmp_path / "faces"
    out = _enroll(procs.env, "alice", *map(str, photos), str(folder / "notes.txt"), str(folder / "wall.png"), str(folder / "missing.jpg"), "--gallery", str(gallery))
    assert out.returncode == 0, out.stderr
    assert "enrolled alice: 3 face(s)" in out.stdout
    assert "notes.txt: not a readable image" in out.stderr and "wall.png: no face found" in out.stderr and "missing.jpg" in out.stderr
    with np.load(gallery / "alice.npz") as data:
        assert data["embeddings"].shape == (3, 128)
    bad = _enroll(procs.env, "../evil", str(photos[0]), "--gallery", str(gallery))
    assert bad.returncode == 2 and "not allowed" in bad.stderr
    assert not (tmp_path / "evil.npz").exists()
    none = _enroll(procs.env, "bob", str(folder / "wall.png"), "--gallery", str(gallery))
    assert none.returncode == 1 and "no face enrolled" in none.stderr


def test_visitor_arrives_is_recognised_engages_and_leaves(procs, tmp_path, alice_photos, shared_data):
    gallery = tmp_path / "faces"
    assert _enroll(procs.env, "alice", *map(str, alice_photos[1]), "--gallery", str(gallery)).returncode == 0
    procs.broker()
    watch = procs.client([Faces.TYPE, Person.TYPE, Exposure.TYPE, Preview.TYPE])
    procs.start("services.camera", env={"ASSISTANT_CAMERA__DEVICE": "sim:backlit", "ASSISTANT_CAMERA__GALLERY_DIR": str(gallery),
                                        "ASSISTANT_SHARED_DATA": str(shared_data)})
    faces_ts, events, exposures, previews = [], [], [], []
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and not any(e.event == "left" for e in events):
        rx = watch.recv(timeout_ms=100)
        if rx is None:
            continue
        m = rx.msg
        if isinstance(m, Faces):
            faces_ts.append(rx.header.ts_ns)
        elif isinstance(m, Person):
            events.append(m)
        elif isinstance(m, Exposure):
            exposures.append(m)
        elif isinstance(m, Preview):
            previews.append(m)
    order = [e.event for e in events]
    assert order[0] == "arrived", order
    assert "recognised" in order and "engaged" in order and order[-1] == "left", order
    assert order.index("engaged") < order.index("disengaged") < order.index("left")
    assert {e.track_id for e in events} == {events[0].track_id}, "one visitor, one stable track id"
    assert any(e.event == "recognised" and e.identity == "alice" for e in events)
    assert events[-1].identity == "alice"
    rate = (len(faces_ts) - 1) / ((faces_ts[-1] - faces_ts[0]) / 1e9)
    assert rate >= 10.0, rate
    assert any(x.mode == "face" for x in exposures)
    face_exp = [x for x in exposures if x.mode == "face"]
    assert abs(face_exp[-1].metered_luminance - face_exp[-1].target_luminance) <= 20
    img = cv2.imdecode(np.frombuffer(previews[-1].jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[1] == 320


def test_missing_device_keeps_the_service_up_and_retrying(procs):
    procs.broker()
    watch = procs.client([Heartbeat.TYPE])
    proc = procs.start("services.camera", env={"ASSISTANT_CAMERA__DEVICE": "/dev/video-none", "ASSISTANT_CAMERA__GALLERY_DIR": str(procs.runtime_dir / "g")})
    hb = wait_for(watch, lambda rx: rx.msg.service == "camera" and rx.msg.counters.get("camera_open_failures", 0) >= 2, 20)
    assert hb.msg.state == "ready" and proc.poll() is None


def test_unplugged_camera_is_reopened_and_faces_resume(procs, tmp_path, shared_data, monkeypatch):
    """The service in this process (a thread) over the real bus, so the test can pull the cable."""
    from assistant.config import load
    from services.camera.service import CameraService

    procs.broker()
    watch = procs.client([Faces.TYPE, Person.TYPE])
    env = {**procs.env, "ASSISTANT_CAMERA__DEVICE": "sim:plain", "ASSISTANT_CAMERA__GALLERY_DIR": str(tmp_path / "g"),
           "ASSISTANT_SHARED_DATA": str(shared_data)}
    monkeypatch.setattr("os.environ", env)
    service = CameraService(load(None, env))
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        wait_for(watch, lambda rx: isinstance(rx.msg, Person) and rx.msg.event == "arrived", 20)
        camera = service.capture.camera
        camera.unplug()
        wait_for(watch, lambda rx: isinstance(rx.msg, Person) and rx.msg.event == "left", 5)
        time.sleep(1.0)  # the capture worker hands its counters to the loop twice a second
        counters = service.heartbeat_counters()
        assert counters.get("camera_lost", 0) == 1 and counters.get("camera_open_failures", 0) >= 1
        assert counters["camera_available"] == 0
        camera.corrupt(5)
        camera.replug()
        wait_for(watch, lambda rx: isinstance(rx.msg, Person) and rx.msg.event == "arrived", 10)
        time.sleep(1.0)
        counters = service.heartbeat_counters()
        assert counters["camera_opened"] == 2 and counters["camera_available"] == 1
        assert counters["bad_frames"] == 5
        assert runner.is_alive()
    finally:
        service.stop()
        runner.join(5)
