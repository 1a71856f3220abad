"""Read a talking video: frames through OpenCV, audio through PyAV, 68-point landmarks by dlib."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class VideoError(ValueError):
    """A video that cannot be used: unreadable, no audio track, or no face."""


def predictor_path() -> Path:
    """The 68-point model shipped by ``face_recognition_models`` (found without importing it:
    its ``__init__`` needs ``pkg_resources``, which our setuptools no longer has)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise RuntimeError("pip install face_recognition_models (ships the dlib 68-point predictor)")
    path = Path(spec.origin).parent / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise RuntimeError(f"{path} is missing; reinstall face_recognition_models")
    return path


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 audio of a media file and its sample rate; VideoError when there is none."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise VideoError(f"{path}: no audio track; lip-sync training needs the speech")
            stream = container.streams.audio[0]
            chunks = []
            for frame in container.decode(stream):
                raw = frame.to_ndarray()
                a = raw.astype(np.float32)
                if np.issubdtype(raw.dtype, np.integer):  # s16 / s32 -> [-1, 1]
                    a /= float(np.iinfo(raw.dtype).max) + 1.0
                if frame.format.is_planar:
                    a = a.mean(axis=0)
                else:
                    a = a.reshape(-1, len(frame.layout.channels)).mean(axis=1)
                chunks.append(a.reshape(-1))
            rate = stream.rate
    except av.error.FFmpegError as exc:
        raise VideoError(f"{path}: cannot decode audio ({exc})") from exc
    if not chunks:
        raise VideoError(f"{path}: the audio track is empty")
    return np.concatenate(chunks).astype(np.float32), int(rate)


@dataclass
class FaceTrack:
    """68-point landmarks per video frame (NaN where no face was found)."""

    landmarks: np.ndarray  # (frames, 68, 2) image pixels
    fps: float

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.landmarks[:, 0, 0])


_FACE_PX = 240  # face box width the predictor sees: dlib returns whole pixels, so small faces
# (GRID: ~90 px) are enlarged first or one pixel of lip motion is 2% of the inter-ocular distance


def _landmarks(predictor, gray: np.ndarray, box) -> np.ndarray:
    import cv2
    import dlib

    scale = float(np.clip(_FACE_PX / max(box.width(), 1), 1.0, 4.0))
    pad = box.width() // 2
    x0, y0 = max(box.left() - pad, 0), max(box.top() - pad, 0)
    x1, y1 = min(box.right() + pad, gray.shape[1]), min(box.bottom() + pad, gray.shape[0])
    crop = cv2.resize(gray[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    rect = dlib.rectangle(
        int((box.left() - x0) * scale), int((box.top() - y0) * scale),
        int((box.right() - x0) * scale), int((box.bottom() - y0) * scale),
    )
    shape = predictor(crop, rect)
    pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
    return pts / scale + [x0, y0]


def track_face(path: Path, progress=True) -> FaceTrack:
    """Largest face per frame; the previous box is reused when detection misses a frame.

    ``progress``: True for a tqdm bar, or a function called as ``progress(frames done, total or
    None)`` every 50 frames."""
    import cv2
    import dlib

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise VideoError(f"{path}: OpenCV cannot open this video")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(predictor_path()))
    out, box = [], None
    bar = None
    report = progress if callable(progress) else None
    if progress is True:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=f"landmarks {path.name}", unit="frame", leave=False)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        faces = detector(gray, 1 if max(gray.shape) < 600 else 0)
        if faces:
            box = max(faces, key=lambda r: r.area())
        if box is None:
            out.append(np.full((68, 2), np.nan))
        else:
            out.append(_landmarks(predictor, gray, box))
        if bar:
            bar.update(1)
        if report is not None and len(out) % 50 == 0:
            report(len(out), total)
    cap.release()
    if bar:
        bar.close()
    if not out:
        raise VideoError(f"{path}: no video frames could be read")
    track = FaceTrack(np.stack(out), float(fps))
    if not track.found.any():
        raise VideoError(f"{path}: no face found in any of {len(out)} frames")
    log.info("%s: face in %d of %d frames", path.name, int(track.found.sum()), len(out))
    return track
