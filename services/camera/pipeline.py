"""The camera's per-frame work, without the bus: check the frame, track faces, meter and expose,
decide who is here and who they are. The service feeds it frames and publishes what it returns.

Recognition (~50-120 ms a face) runs on one worker thread, at most one face at a time, so it
never holds up a frame; its answers are picked up on a later frame.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from assistant.config import CameraSettings
from assistant.messages import Face, Person, Speaker
from hardware.camera import ControlLimits, Frame

from .detection import FaceTracker, Track, make_detector
from .exposure import ExposureState, FacePriorityExposure, meter_centre, meter_faces, meter_global, meter_search
from .presence import Presence
from .recognition import Recognizer
from .speaker import ActiveSpeaker, MouthReader, shared_reader

log = logging.getLogger(__name__)

#: Faces narrower than this are not sent to recognition (the descriptor needs detail).
MIN_RECOGNITION_PX = 50


def frame_problem(image: object) -> str | None:
    """Why a frame cannot be used, or None. Cheap: runs on every frame."""
    if not isinstance(image, np.ndarray):
        return f"frame is {type(image).__name__}, not an image"
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        return f"frame has dtype {image.dtype} and shape {image.shape}, expected uint8 HxWx3"
    if image.shape[0] < 32 or image.shape[1] < 32:
        return f"frame of {image.shape[1]}x{image.shape[0]} is too small"
    # A truncated MJPEG decodes with its missing part filled with one flat value: real sensor
    # noise never gives a bottom quarter without a single differing pixel.
    tail = image[-image.shape[0] // 4 :: 3, ::7]
    if int(tail.max()) == int(tail.min()) and int(image[: image.shape[0] // 4 : 3, ::7].std()) != 0:
        return "frame is truncated (flat lower part)"
    return None


@dataclass
class Result:
    """What one frame produced."""

    frame_ns: int
    width: int
    height: int
    faces: list[Face] = field(default_factory=list)
    events: list[Person] = field(default_factory=list)
    exposure: ExposureState | None = None
    problem: str | None = None
    tracks: list[Track] = field(default_factory=list)
    speaker: Speaker | None = None
    """The active speaker changed on this frame."""


class CameraPipeline:
    def __init__(self, settings: CameraSettings, limits: ControlLimits, *, width: int, height: int,
                 recognizer: Recognizer | None = None, recognition_sync: bool = False, mouths: MouthReader | None = None) -> None:
        self.settings = settings
        self.mode = settings.ae_mode
        detector = make_detector(settings.detector, settings.min_face_px, settings.detect_width * width // max(settings.width, 1))
        self.tracker = FaceTracker(detector, settings)
        self.presence = Presence(settings, width=width)
        self.exposure = FacePriorityExposure(limits, settings)
        self.recognizer = recognizer
        self.recognition_sync = recognition_sync
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recognise") if recognizer and not recognition_sync else None
        self._job: tuple[Track, Future] | None = None
        self._enrol: dict | None = None
        self.counters: Counter[str] = Counter()
        self.speaker: ActiveSpeaker | None = None
        self.mouths: MouthReader | None = mouths
        if settings.speaker_detection:
            try:
                # ~100 MB of landmark model: the service loads it once in setup (loading holds the GIL for seconds)
                self.mouths = mouths or shared_reader()
                self.speaker = ActiveSpeaker(settings)
            except RuntimeError as exc:
                log.warning("who-is-speaking off: %s", exc)

    # --- per frame --------------------------------------------------------------------------
    def process(self, frame: Frame) -> Result:
        import cv2

        problem = frame_problem(frame.image)
        if problem is not None:
            self.counters["bad_frames"] += 1
            return Result(frame.ts_ns, 0, 0, problem=problem)
        image = frame.image
        h, w = image.shape[:2]
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        live, left = self.tracker.update(image, frame.ts_ns)
        for t in live:
            t.luminance = meter_faces(gray, [t.box]) or 0.0
        self._collect_recognition(live)
        events = self.presence.update(live, left)
        for t in live:
            if t.newly_identified:
                t.newly_identified = False
                events.append(("recognised", t))
        self._schedule_recognition(image, live, frame.ts_ns)
        self._enrol_step(image, live)
        exposure = self._expose(gray, live)
        for name, t in events:
            self.counters[f"person_{name}"] += 1
        ordered = sorted(live, key=lambda t: (not t.engaged, t.distance_m))
        faces = [Face(track_id=t.id, box=tuple(round(float(v), 1) for v in t.box), distance_m=round(float(t.distance_m), 2), engaged=t.engaged,  # type: ignore[arg-type]
                      identity=t.identity, similarity=round(float(t.similarity), 3), luminance=round(float(t.luminance), 1)) for t in ordered]
        persons = [Person(event=name, track_id=t.id, identity=t.identity, distance_m=round(float(t.distance_m), 2)) for name, t in events]  # type: ignore[arg-type]
        self.counters["frames"] += 1
        return Result(frame.ts_ns, w, h, faces, persons, exposure, tracks=ordered, speaker=self._who_speaks(gray, live, frame.ts_ns))

    def _who_speaks(self, gray: np.ndarray, live: list[Track], ts_ns: int) -> Speaker | None:
        if self.speaker is None or self.mouths is None:
            return None
        # Without hearing.activity (no microphone, hearing off) the lips are not read: nothing to line them up with.
        if self.speaker.hears(ts_ns):
            self.read_mouths(gray, live, ts_ns)
        change = self.speaker.update([t.id for t in live])
        self.counters["speaker_scorings"] = self.speaker.scorings
        if change is None:
            return None
        self.counters["speaker_changes"] += 1
        who = next((t.identity for t in live if t.id == change.track_id), "")
        return Speaker(track_id=change.track_id, since_ns=change.since_ns, identity=who, confidence=change.confidence,
                       previous_track_id=change.previous)

    def read_mouths(self, gray: np.ndarray, live: list[Track], ts_ns: int) -> None:
        for t in live:
            if t.seen_now and t.box[2] >= self.settings.speaker_min_face_px:
                self.speaker.add_mouth(t.id, ts_ns, self.mouths.read(gray, t.box))  # type: ignore[union-attr]

    def _expose(self, gray: np.ndarray, live: list[Track]) -> ExposureState | None:
        if self.mode == "face":
            boxes = [t.box for t in live if t.engaged] or [t.box for t in live]
            metered = meter_faces(gray, boxes) if boxes else None
            label = "face"
            if metered is None and self.settings.search_meter == "centre":
                metered, label = meter_centre(gray), "centre"
            elif metered is None:
                metered, label = meter_search(gray), "search"
            return self.exposure.update(metered, label)
        if self.mode == "global":
            return self.exposure.update(meter_global(gray), "global")
        return None

    # --- recognition --------------------------------------------------------------------------
    def _schedule_recognition(self, image: np.ndarray, live: list[Track], now_ns: int) -> None:
        if self.recognizer is None or self._job is not None or not self.recognizer.gallery.people:
            return
        due = [t for t in live if t.box[2] >= MIN_RECOGNITION_PX and now_ns >= t.next_recognition_ns]
        if not due:
            return
        t = min(due, key=lambda t: (not t.engaged, t.next_recognition_ns))
        settled = len(t.votes) >= 3 and t.identity
        t.next_recognition_ns = now_ns + int(self.settings.recognise_every_s * (6 if settled else 1) * 1e9)
        if self._pool is None:
            fut: Future = Future()
            fut.set_result(self.recognizer.identify(image, t.box))
        else:
            fut = self._pool.submit(self.recognizer.identify, image, t.box)
        self._job = (t, fut)
        if self._pool is None:
            self._collect_recognition(live)

    def _collect_recognition(self, live: list[Track]) -> None:
        if self._job is None or not self._job[1].done():
            return
        t, fut = self._job
        self._job = None
        try:
            name, dist = fut.result()
        except Exception as exc:  # noqa: BLE001 - one bad crop must not stop recognition
            self.counters["recognition_errors"] += 1
            log.warning("recognition failed: %s", exc)
            return
        self.counters["recognitions"] += 1
        t.votes = (t.votes + [(name, dist)])[-5:]
        names = Counter(n for n, _ in t.votes)
        best, n = names.most_common(1)[0]
        need = 1 if len(t.votes) == 1 else 2
        identity = best if n >= need else ""
        t.similarity = max(0.0, 1.0 - float(np.mean([d for nm, d in t.votes if nm == best])))
        if identity != t.identity:
            t.identity = identity
            t.newly_identified = bool(identity)

    # --- live enrolment -----------------------------------------------------------------------
    def enroll_live(self, name: str, samples: int = 5) -> None:
        """Enrol the engaged (else the largest) face over the next ``samples`` frames."""
        from .recognition import check_name

        if self.recognizer is None:
            raise RuntimeError("recognition is not available in this camera service")
        self._enrol = {"name": check_name(name), "left": samples, "embs": [], "deadline": time.monotonic() + 10}

    def _enrol_step(self, image: np.ndarray, live: list[Track]) -> None:
        job = self._enrol
        if job is None or self.recognizer is None:
            return
        if time.monotonic() > job["deadline"]:
            log.warning("live enrolment of %s gave up: no usable face within 10 s", job["name"])
            self._enrol = None
            return
        faces = [t for t in live if t.seen_now and t.box[2] >= MIN_RECOGNITION_PX]
        if not faces:
            return
        t = max(faces, key=lambda t: (t.engaged, t.box[2]))
        job["embs"].append(self.recognizer.embedder.embed(image, t.box))
        job["left"] -= 1
        if job["left"] <= 0:
            self.recognizer.gallery.add(job["name"], np.stack(job["embs"]))
            log.info("enrolled %s from the live camera (%d views)", job["name"], len(job["embs"]))
            self.counters["enrolled"] += 1
            for tr in live:
                tr.next_recognition_ns = 0
                tr.votes = []
            self._enrol = None

    def reset(self) -> list[Person]:
        """Forget every face (the camera went away): 'left' events for the ones announced."""
        gone = [t for t in self.tracker.tracks if t.confirmed]
        self.tracker.tracks = []
        events = self.presence.update([], gone)
        return [Person(event=name, track_id=t.id, identity=t.identity, distance_m=round(float(t.distance_m), 2)) for name, t in events]  # type: ignore[arg-type]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


def preview_jpeg(image: np.ndarray, result: Result, width: int = 320, quality: int = 70) -> bytes:
    """A small JPEG with the tracked faces boxed (green: engaged), for the status page."""
    import cv2

    h, w = image.shape[:2]
    s = width / w
    small = cv2.resize(image, (width, max(1, int(h * s))), interpolation=cv2.INTER_AREA)
    for f in result.faces:
        x, y, bw, bh = (int(v * s) for v in f.box)
        colour = (0, 200, 0) if f.engaged else (0, 200, 255)
        cv2.rectangle(small, (x, y), (x + bw, y + bh), colour, 1)
        label = f"{f.identity or '?'} {f.distance_m:.1f}m"
        cv2.putText(small, label, (x, max(10, y - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.35, colour, 1)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buf.tobytes() if ok else b""
