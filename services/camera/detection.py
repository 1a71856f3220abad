"""Face detection and tracking: a detector searched over the whole frame now and then, and near
each tracked face every frame; tracks keep stable ids across frames.

Two detectors with one interface (``search(image)``, ``refine(image, box)``, BGR frames):
``MtcnnDetector`` (``mtcnn.py``, the default: finds every GRID speaker at 2.2 m in the simulated
backlit kiosk) and ``HaarFaceDetector`` here (no model files; it finds the darker-skinned speaker
only from ~1.4 m). At 640x480 on one core the budget for detection, tracking and exposure is 33 ms
a frame: a full-frame search (~10-20 ms Haar, ~20 ms MTCNN) runs every ``detect_every`` frames, a
search in a small window around a known face (~1-3 ms) every frame.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from assistant.config import CameraSettings

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]  # x, y, w, h in capture pixels

_REFINE_PX = 48  # face size the refine window is rescaled to


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0



def refine_window(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the window twice the size of ``box`` around it, clipped to the
    image; None when too little of it is left to search (under 16 px)."""
    x, y, w, h = box
    m = 0.5 * w
    x0, y0 = int(max(0, x - m)), int(max(0, y - m))
    x1, y1 = int(min(shape[1], x + w + m)), int(min(shape[0], y + h + m))
    return None if x1 - x0 < 16 or y1 - y0 < 16 else (x0, y0, x1, y1)

class HaarFaceDetector:
    """Haar cascade (OpenCV 4.x ships it) with a cheap full-frame search and a cheaper local one."""

    def __init__(self, detect_width: int = 320, min_face_px: int = 36) -> None:
        import cv2

        self.cv2 = cv2
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"cannot load the face cascade {path}; install opencv-python 4.x (extra: vision)")
        self.detect_width = detect_width
        self.min_face_px = min_face_px
        # Two contrast normalisations, alternated between searches: a global histogram
        # equalisation lifts dark faces best, but with a blown-out window filling half the frame it
        # squeezes a lit face into a few grey levels (darker skin first); local CLAHE keeps those.
        self.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
        self._searches = 0

    def _gray(self, image: np.ndarray) -> np.ndarray:
        return self.cv2.cvtColor(image, self.cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image

    def search(self, image: np.ndarray) -> list[Box]:
        """All faces in the frame (at least ``min_face_px`` wide)."""
        cv2 = self.cv2
        gray = self._gray(image)
        h, w = gray.shape
        scale = min(1.0, self.detect_width / w)
        small = cv2.resize(gray, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else gray
        self._searches += 1
        small = self.clahe.apply(small) if self._searches % 2 else cv2.equalizeHist(small)
        ms = max(24, int(self.min_face_px * scale))  # the cascade's window is 24 px
        found = self.cascade.detectMultiScale(small, scaleFactor=1.15, minNeighbors=4, minSize=(ms, ms))
        return [(float(x / scale), float(y / scale), float(bw / scale), float(bh / scale)) for x, y, bw, bh in found]

    def refine(self, image: np.ndarray, box: Box) -> Box | None:
        """The face near ``box`` (searched in a window twice its size), or None."""
        cv2 = self.cv2
        x, y, w, h = box
        window = refine_window(box, image.shape)
        if window is None:
            return None
        x0, y0, x1, y1 = window
        roi = self._gray(image[y0:y1, x0:x1])
        s = _REFINE_PX / max(w, 1.0)
        roi = cv2.resize(roi, (max(1, int(roi.shape[1] * s)), max(1, int(roi.shape[0] * s))), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        roi = cv2.equalizeHist(roi)
        lo, hi = int(_REFINE_PX * 0.7), int(_REFINE_PX * 1.45)
        found = self.cascade.detectMultiScale(roi, scaleFactor=1.08, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi))
        if len(found) == 0:
            return None
        cx, cy = (x + w / 2 - x0) * s, (y + h / 2 - y0) * s
        fx, fy, fw, fh = min(found, key=lambda b: (b[0] + b[2] / 2 - cx) ** 2 + (b[1] + b[3] / 2 - cy) ** 2)
        return (float(x0 + fx / s), float(y0 + fy / s), float(fw / s), float(fh / s))


@dataclass
class Track:
    """One face followed across frames."""

    id: int
    box: Box
    first_ns: int
    last_seen_ns: int
    hits: int = 1
    misses: int = 0
    confirmed: bool = False
    distance_m: float = 0.0
    engaged: bool = False
    identity: str = ""
    similarity: float = 0.0
    luminance: float = 0.0
    votes: list[tuple[str, float]] = field(default_factory=list)
    next_recognition_ns: int = 0
    seen_now: bool = True
    newly_identified: bool = False


class FaceDetector(Protocol):
    def search(self, image: np.ndarray) -> list[Box]: ...

    def refine(self, image: np.ndarray, box: Box) -> Box | None: ...


def make_detector(kind: str, min_face_px: int, detect_width: int = 480) -> FaceDetector:
    """The configured detector; ``mtcnn`` falls back to Haar (with a warning) when it cannot load."""
    if kind == "mtcnn":
        from .mtcnn import MtcnnDetector, MtcnnError

        try:
            return MtcnnDetector(min_face_px)
        except MtcnnError as exc:
            log.warning("MTCNN detector unavailable (%s); using the Haar cascade", exc)
    elif kind != "haar":
        raise ValueError(f"unknown face detector {kind!r}; use mtcnn or haar")
    return HaarFaceDetector(detect_width, min_face_px)


class FaceTracker:
    """Stable ids for faces: local refinement every frame, full search every ``detect_every`` frames."""

    def __init__(self, detector: FaceDetector, settings: CameraSettings, *, confirm_hits: int = 2) -> None:
        self.detector = detector
        self.detect_every = max(1, settings.detect_every)
        self.lost_after_ns = int(settings.lost_after_s * 1e9)
        self.confirm_hits = confirm_hits
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._frame = 0

    def update(self, image: np.ndarray, ts_ns: int) -> tuple[list[Track], list[Track]]:
        """Track faces in ``image`` (BGR); returns (live confirmed tracks, tracks that just left)."""
        for t in self.tracks:
            found = self.detector.refine(image, t.box)
            t.seen_now = found is not None
            if found is not None:
                self._hit(t, found, ts_ns)
            else:
                t.misses += 1
        # Full search now and then, and every other frame while nobody is tracked.
        if self._frame % self.detect_every == 0 or (not self.tracks and self._frame % 2 == 0):
            for box in self.detector.search(image):
                near = [t for t in self.tracks if iou(box, t.box) >= 0.2]
                if not near:
                    self.tracks.append(Track(next(self._ids), box, ts_ns, ts_ns))
                    continue
                # the search found a face its track's local refine missed this frame: a hit after all
                t = max(near, key=lambda t: iou(box, t.box))
                if not t.seen_now:
                    t.seen_now = True
                    self._hit(t, box, ts_ns)
        self._frame += 1
        self._dedupe()
        left = [t for t in self.tracks if t.confirmed and ts_ns - t.last_seen_ns > self.lost_after_ns]
        # Unconfirmed candidates that miss twice were false alarms (window frames, shelves).
        self.tracks = [t for t in self.tracks if t not in left and (t.confirmed or t.misses < 2)]
        return [t for t in self.tracks if t.confirmed], left

    def _hit(self, t: Track, found: Box, ts_ns: int) -> None:
        # light smoothing: a detector's box jitters by a few pixels between frames
        t.box = tuple(float(0.4 * a + 0.6 * b) for a, b in zip(t.box, found))  # type: ignore[assignment]
        t.hits += 1
        t.misses = 0
        t.last_seen_ns = ts_ns
        if t.hits >= self.confirm_hits:
            t.confirmed = True

    def _dedupe(self) -> None:
        keep: list[Track] = []
        for t in sorted(self.tracks, key=lambda t: t.id):
            if all(iou(t.box, k.box) < 0.4 for k in keep):
                keep.append(t)
        self.tracks = keep
