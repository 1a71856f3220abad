"""The MTCNN face detector and face-search metering on the simulated camera with real GRID faces:
every speaker found from afar (fairness), no faces in empty rooms, a dark visitor walking into a
backlit kiosk made detectable before the first detection, and the ONNX files true to their source."""

import numpy as np
import pytest

from assistant.config import CameraSettings
from services.camera.exposure import meter_centre, meter_search

SPEAKERS = ("bbaf2n", "brbk7n", "lwbsza", "pwij3p", "sbwe5n", "swiz3n")


@pytest.fixture(scope="module")
def grid(shared_data):
    return shared_data / "talking" / "grid"


@pytest.fixture(scope="module")
def mtcnn():
    from services.camera.mtcnn import MtcnnDetector

    return MtcnnDetector(min_face_px=32)


def _entry(sprite):
    """The bench's visitor: enters off-centre at 2.2 m, walks up to 1.2 m."""
    from hardware.camera_sim import Walk

    return Walk(sprite, [(0.3, -0.9, 2.2), (2.0, -0.1, 1.2), (3.0, 0.0, 0.8)])


def test_mtcnn_finds_every_speaker_at_2_metres_in_its_face_box_convention(grid, mtcnn):
    """With the face well exposed, all six speakers are found at ~2.1 m (38 px faces), the
    darker-skinned ``swiz3n`` included (the Haar cascade found him only from ~1.4 m)."""
    from hardware.camera_sim import PersonSprite, SimulatedCamera, build_scene
    from services.camera.detection import iou

    for name in SPEAKERS:
        scene = build_scene("backlit", walks=[_entry(PersonSprite.from_clip(grid / f"{name}.mpg"))])
        cam = SimulatedCamera(scene, realtime=False, exposure_s=0.007)
        cam.open()
        hits = 0
        for i in range(16):
            frame = cam.read()
            if i < 10 or i % 2:  # in view from frame 9; look at 10, 12, 14 (2.18-2.11 m)
                continue
            truth = cam.last_truth[0]
            found = [b for b in mtcnn.search(frame.image) if iou(b, truth.box) >= 0.5]
            if found:
                hits += 1
                assert abs(found[0][2] / truth.box[2] - 1) < 0.15, (name, found[0], truth.box)
        assert hits >= 2, (name, hits)


def test_mtcnn_sees_no_faces_in_empty_rooms(mtcnn):
    from hardware.camera_sim import SimulatedCamera, build_scene

    for scene_name, exposure in (("backlit", 0.007), ("backlit", 0.0004), ("mixed", 0.02), ("plain", 0.01), ("dim", 0.0333)):
        cam = SimulatedCamera(build_scene(scene_name, walks=[]), realtime=False, exposure_s=exposure, gain=4.0 if scene_name == "dim" else 1.0)
        cam.open()
        found = [b for _ in range(6) for b in mtcnn.search(cam.read().image)]
        assert found == [], (scene_name, found)


def test_mtcnn_refine_follows_a_face_and_lets_go_of_an_empty_window(grid, mtcnn):
    from hardware.camera_sim import PersonSprite, SimulatedCamera, Walk, build_scene
    from services.camera.detection import iou

    walk = Walk(PersonSprite.from_clip(grid / "swiz3n.mpg"), [(0.0, 0.0, 1.5), (1.0, 0.2, 1.0)])
    cam = SimulatedCamera(build_scene("plain", walks=[walk]), realtime=False, exposure_s=0.02)
    cam.open()
    box = cam.last_truth[0].box if cam.last_truth else None
    for _ in range(20):
        frame = cam.read()
        truth = cam.last_truth[0].box
        box = mtcnn.refine(frame.image, box or truth)
        assert box is not None and iou(box, truth) >= 0.5, (box, truth)
    assert mtcnn.refine(frame.image, (20.0, 20.0, 60.0, 60.0)) is None


def test_search_meter_ignores_a_window_that_is_not_clipped():
    """A face-less backlit frame at a short exposure: the window is bright but unclipped, the room
    and the visitor dark. The centre meter settles on the window; the search meter on the room."""
    gray = np.full((480, 640), 30, np.uint8)
    gray[24:384, 77:563] = 200  # the window, not clipped
    gray[200:210, 77:563] = 20  # a mullion
    assert meter_search(gray) < 35
    assert meter_centre(gray) > 150
    flat = np.clip(np.random.default_rng(0).normal(100, 15, (480, 640)), 0, 255).astype(np.uint8)
    assert meter_search(flat) == pytest.approx(100, abs=1.5), "an ordinary room: no split, the plain mean"
    assert meter_search(np.full((480, 640), 255, np.uint8)) == 255.0


def test_face_search_makes_a_dark_visitor_detectable_on_entry_the_global_baseline_does_not(grid):
    """The camera starts where a webcam's own AE leaves a backlit kiosk (0.4 ms); nobody is there
    for 0.3 s, then a darker-skinned visitor walks in at 2.2 m. Face-search metering has exposed for
    the room by then, so he is found within 0.2 s; mean-luminance AE never finds him on the way in."""
    from hardware.camera_sim import PersonSprite, build_scene
    from bench.lib.camera_eval import run_scene

    scene = build_scene("backlit", walks=[_entry(PersonSprite.from_clip(grid / "swiz3n.mpg"))])
    face = run_scene(scene, CameraSettings(ae_mode="face"), 45, exposure_s=0.0004)
    glob = run_scene(scene, CameraSettings(ae_mode="global"), 45, exposure_s=0.0004)
    first_in = next(r.index for r in face.records if r.truth_inside)
    first = next((r.index for r in face.records if r.detected), None)
    assert first is not None and first - first_in <= 6, (first_in, first)
    assert face.records[first].face_luma > 70, "exposed for faces before any face was found"
    assert not any(r.detected for r in glob.records), "the global baseline keeps him a silhouette"
    assert max(r.face_luma for r in glob.records if r.face_luma is not None) < 40


def test_committed_onnx_weights_match_facenet_pytorch(tmp_path):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from models.mtcnn.network import facenet_pytorch_data, load

    try:
        data = facenet_pytorch_data()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    import onnxruntime as ort

    from services.camera.mtcnn import WEIGHTS

    rng = np.random.default_rng(1)
    for name, shape in (("pnet", (1, 3, 40, 52)), ("rnet", (3, 3, 24, 24)), ("onet", (2, 3, 48, 48))):
        x = rng.uniform(-1, 1, shape).astype(np.float32)
        with torch.no_grad():
            ref = [t.numpy() for t in load(name, data)(torch.from_numpy(x))]
        got = ort.InferenceSession(str(WEIGHTS / f"{name}.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})
        for a, b in zip(ref, got):
            assert np.abs(a - b).max() < 1e-4, name
