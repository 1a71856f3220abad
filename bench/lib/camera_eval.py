"""Run the camera pipeline on the simulated camera and score it against the scene's ground truth.

Shared by the tests and ``bench/camera.py``. Scores:

- detection rate: frames where a face wholly inside the frame (and within ``max_distance_m``) is
  found *in that frame* (a track box with IoU >= 0.3 that the detector confirmed this frame);
- face luminance: the meter over the true face box, whatever the detector did;
- recognition: the recogniser's single-shot answer on detected faces (identity for enrolled
  people, "" for strangers) — every ``recognise_every`` frames, synchronously.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2

from assistant.config import CameraSettings
from hardware.camera_sim import Scene, SimulatedCamera

from services.camera.detection import iou
from services.camera.exposure import meter_faces
from services.camera.pipeline import CameraPipeline
from services.camera.recognition import Recognizer


@dataclass
class FrameRecord:
    index: int
    truth_inside: bool
    detected: bool
    face_luma: float | None
    exposure_s: float
    gain: float
    process_s: float
    identity: str | None = None
    """Recogniser's answer on this frame when it was asked (None when not asked)."""
    true_identity: str = ""


@dataclass
class Run:
    records: list[FrameRecord] = field(default_factory=list)
    events: list[tuple[int, str, int, str]] = field(default_factory=list)
    reversals: int = 0
    changes: int = 0

    def detect_rate(self, start: int = 0) -> float:
        rs = [r for r in self.records[start:] if r.truth_inside]
        return sum(r.detected for r in rs) / len(rs) if rs else float("nan")

    def recog_accuracy(self) -> float:
        rs = [r for r in self.records if r.identity is not None]
        return sum(r.identity == r.true_identity for r in rs) / len(rs) if rs else float("nan")

    def converge_frames(self, target: float, band: float, hold: int = 3) -> int | None:
        """First frame after which the true face luma stays in target +- band for ``hold`` frames."""
        lumas = [r.face_luma for r in self.records]
        for i in range(len(lumas) - hold + 1):
            if all(v is not None and abs(v - target) <= band for v in lumas[i : i + hold]):
                return i
        return None


def run_scene(scene: Scene, settings: CameraSettings, frames: int, *, exposure_s: float = 0.0004, gain: float = 1.0,
              recognizer: Recognizer | None = None, enrolled: dict[str, str] | None = None, recognise_every: int = 0,
              max_distance_m: float = 2.5, latency_frames: int = 2, seed: int = 1) -> Run:
    """Run ``frames`` frames; the camera starts at (exposure_s, gain), e.g. where its own AE left it.

    ``enrolled`` maps the scene's people (clip names) to enrolled names; others should be unknown.
    """
    cam = SimulatedCamera(scene, fps=settings.fps, mains_hz=settings.mains_hz, latency_frames=latency_frames,
                          realtime=False, seed=seed, exposure_s=exposure_s, gain=gain,
                          limits=_limits(settings))
    cam.open()
    settings_start = settings
    pipe = CameraPipeline(settings_start, cam.limits, width=scene.width, height=scene.height)
    pipe.exposure.exposure_s, pipe.exposure.gain = cam.exposure_s, cam.gain
    run = Run()
    enrolled = enrolled or {}
    for i in range(frames):
        frame = cam.read()
        t0 = time.perf_counter()
        res = pipe.process(frame)
        if res.exposure is not None and res.exposure.changed:
            cam.set_exposure(res.exposure.exposure_s, res.exposure.gain)
        dt = time.perf_counter() - t0
        for ev in res.events:
            run.events.append((i, ev.event, ev.track_id, ev.identity))
        truths = [t for t in cam.last_truth if t.inside and t.distance_m <= max_distance_m]
        gray = None
        luma, detected, ident, true_id = None, False, None, ""
        if truths:
            tr = truths[0]
            gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            luma = meter_faces(gray, [tr.box])
            match = [t for t in res.tracks if t.seen_now and iou(t.box, tr.box) >= 0.3]
            detected = bool(match)
            true_id = enrolled.get(tr.name, "")
            if recognizer is not None and recognise_every and detected and i % recognise_every == 0 and match[0].box[2] >= 50:
                ident = recognizer.identify(frame.image, match[0].box)[0]
        run.records.append(FrameRecord(i, bool(truths), detected, luma, frame.exposure_s, frame.gain, dt, ident, true_id))
    run.reversals, run.changes = pipe.exposure.reversals, pipe.exposure.changes
    pipe.close()
    return run


def _limits(settings: CameraSettings):
    from hardware.camera import ControlLimits

    return ControlLimits(settings.exposure_min_s, settings.exposure_max_s, settings.gain_min, settings.gain_max)
