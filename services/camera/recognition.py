"""Face recognition: dlib's 128-d ResNet face descriptor, a gallery of enrolled people on disk.

The descriptor runs on a face aligned by dlib's 5-point landmark predictor. Two descriptors of the
same person are close in Euclidean distance; ``match_threshold`` is the largest distance accepted
as the same person, chosen from genuine and impostor distances measured on our data (see
docs/camera.md; dlib's own suggestion is 0.6, ours is stricter so strangers stay unknown).

Gallery: one ``NAME.npz`` per person under ``gallery_dir`` holding an N x 128 ``embeddings``
array. Names are checked (letters, digits, space, ``._-``) so a name can never escape the folder.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")


class RecognitionError(Exception):
    """A photo or name cannot be enrolled; the message says why."""


def models_dir() -> Path:
    """Folder of the ``face_recognition_models`` package, found without importing it (its
    ``pkg_resources`` import fails on setuptools >= 81)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face_recognition_models is not installed; pip install 'embodied-assistant[vision]'")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class FaceEmbedder:
    """dlib 5-point alignment + ResNet descriptor (~50-120 ms per face on one core)."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - the vision extra is installed where this runs
            raise RuntimeError("dlib is not installed; pip install 'embodied-assistant[vision]'") from exc
        self.dlib = dlib
        d = models_dir()
        self.shape = dlib.shape_predictor(str(d / "shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(str(d / "dlib_face_recognition_resnet_model_v1.dat"))

    def embed(self, bgr: np.ndarray, box: Box) -> np.ndarray:
        """128-d descriptor of the face in ``box`` of a BGR image."""
        x, y, w, h = box
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        rect = self.dlib.rectangle(int(x), int(y), int(x + w), int(y + h))
        shape = self.shape(rgb, rect)
        return np.asarray(self.net.compute_face_descriptor(rgb, shape), dtype=np.float32)


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise RecognitionError(f"name {name!r} is not allowed: use letters, digits, spaces and ._- (at most 64)")
    return name


class Gallery:
    """Enrolled people: name -> embeddings, stored one file per person."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.people: dict[str, np.ndarray] = {}
        self.reload()

    def reload(self) -> None:
        self.people = {}
        if not self.folder.is_dir():
            return
        for path in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(path, allow_pickle=False) as data:
                    emb = np.asarray(data["embeddings"], dtype=np.float32)
            except Exception as exc:  # noqa: BLE001 - a broken file must not hide the others
                reason = f"not a readable gallery archive: {type(exc).__name__}"
            else:
                if emb.ndim == 2 and emb.shape[1] == 128 and np.isfinite(emb).all():
                    self.people[path.stem] = emb
                    continue
                reason = f"embeddings of shape {emb.shape}, or not finite"
            log.warning("skipping gallery file %s (%s): %s is not recognised; enrol them again with "
                        "'assistant enroll %s PHOTO...'", path, reason, path.stem, path.stem)

    def add(self, name: str, embeddings: np.ndarray) -> Path:
        """Add embeddings to ``name`` (created if new); written atomically."""
        check_name(name)
        emb = np.asarray(embeddings, dtype=np.float32).reshape(-1, 128)
        if name in self.people:
            emb = np.concatenate([self.people[name], emb])
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.npz"
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, embeddings=emb)
        os.replace(tmp, path)
        self.people[name] = emb
        return path

    def match(self, emb: np.ndarray) -> tuple[str, float]:
        """(closest enrolled name, its distance); ("", inf) with an empty gallery."""
        best, dist = "", float("inf")
        for name, embs in self.people.items():
            d = float(np.min(np.linalg.norm(embs - emb, axis=1)))
            if d < dist:
                best, dist = name, d
        return best, dist


class Recognizer:
    """Who is this face: an enrolled name when closer than the threshold, else unknown ("")."""

    def __init__(self, gallery: Gallery, threshold: float = 0.5, embedder: FaceEmbedder | None = None) -> None:
        self.gallery = gallery
        self.threshold = threshold
        self.embedder = embedder or FaceEmbedder()

    def identify(self, bgr: np.ndarray, box: Box) -> tuple[str, float]:
        """(name or "", distance to the closest enrolled person)."""
        name, dist = self.gallery.match(self.embedder.embed(bgr, box))
        return (name if dist <= self.threshold else ""), dist


def largest_face(bgr: np.ndarray) -> Box | None:
    """The largest face in a photo (Haar on the equalised image, then dlib HOG as a second try)."""
    import cv2

    gray = cv2.equalizeHist(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    faces = [tuple(map(float, b)) for b in cascade.detectMultiScale(gray, 1.1, 5, minSize=(40, 40))]
    if not faces:
        import dlib

        faces = [(r.left(), r.top(), r.width(), r.height()) for r in dlib.get_frontal_face_detector()(gray, 1)]
    return max(faces, key=lambda b: b[2] * b[3]) if faces else None


def enroll_photos(gallery_dir: str | os.PathLike[str], name: str, photos: list[str], embedder: FaceEmbedder | None = None) -> tuple[int, list[str]]:
    """Enrol ``name`` from photo files; returns (faces added, problems per rejected photo)."""
    import cv2

    check_name(name)
    embedder = embedder or FaceEmbedder()
    embs, problems = [], []
    for photo in photos:
        image = cv2.imread(str(photo), cv2.IMREAD_COLOR) if Path(photo).is_file() else None
        if image is None:
            problems.append(f"{photo}: not a readable image")
            continue
        box = largest_face(image)
        if box is None:
            problems.append(f"{photo}: no face found")
            continue
        embs.append(embedder.embed(image, box))
    if embs:
        Gallery(gallery_dir).add(name, np.stack(embs))
    return len(embs), problems
