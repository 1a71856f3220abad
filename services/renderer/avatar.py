"""The avatar: a portrait photo with its 68 face landmarks, meshes and masks, built once and cached.

Detection (dlib HOG) and the 68-point fit (dlib shape predictor from ``face_recognition_models``)
run only when the portrait changes: results are cached in ``<cache_dir>/<sha256 of the portrait>/``
so a restart with the same photo costs a file read. Anything wrong with the portrait (missing,
unreadable, not an image, no face) raises :class:`AvatarError` with one line saying what to fix,
so the renderer fails at start-up instead of showing a broken face.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from assistant.errors import SetupError
from assistant.face.geometry import MOUTH, apply_affine, invert_affine, similarity_to_canonical

from .mesh import EyeMesh, LowerFaceMesh, eye_mesh, lower_face_mesh

log = logging.getLogger(__name__)

DEFAULT_PORTRAIT = Path(__file__).resolve().parent / "assets" / "astronaut.png"
"""Public-domain NASA portrait shipped with the code (see ``assets/PROVENANCE.md``)."""

CACHE_VERSION = 1
"""Bump when what is cached (or how it is computed) changes; old caches are then rebuilt."""

MAX_PIXELS = 40_000_000  # a decompression bomb or a raw camera dump is not a portrait
MIN_SIDE = 128
MIN_EYE_DISTANCE_PX = 24  # below this the mouth is a few pixels wide: nothing to animate


class AvatarError(SetupError):
    """The portrait cannot become an avatar; the message says why and what to do."""


def predictor_path() -> Path:
    """Location of dlib's 68-point predictor inside the ``face_recognition_models`` package.

    Found through importlib's spec, not by importing the package: its ``__init__`` imports
    ``pkg_resources``, which recent setuptools no longer ships.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise AvatarError("face_recognition_models is not installed: pip install 'embodied-assistant[renderer]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise AvatarError(f"68-point landmark model missing at {path}: reinstall face_recognition_models")
    return path


_detector = None
_predictor = None


def detect_landmarks(image_bgr: np.ndarray) -> tuple[np.ndarray, float] | None:
    """68 landmarks (68, 2) of the largest face and its detection score, or None without a face."""
    global _detector, _predictor
    import dlib  # heavy; only the renderer and the tests need it

    if _detector is None:
        _detector = dlib.get_frontal_face_detector()
        _predictor = dlib.shape_predictor(str(predictor_path()))
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])  # dlib silently finds nothing in strided views
    upsample = 1 if max(rgb.shape[:2]) < 1200 else 0
    boxes, scores, _ = _detector.run(rgb, upsample, 0.0)
    if not boxes:
        return None
    best = max(range(len(boxes)), key=lambda i: boxes[i].area())
    shape = _predictor(rgb, boxes[best])
    pts = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return pts, float(scores[best])


def _read_image(path: Path) -> tuple[np.ndarray, bytes]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AvatarError(f"portrait {path} does not exist: set renderer.portrait to a photo file") from None
    except OSError as exc:
        raise AvatarError(f"portrait {path} cannot be read ({exc.strerror}): check the path and permissions") from None
    if not data:
        raise AvatarError(f"portrait {path} is empty: use a JPEG or PNG photo of a face")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise AvatarError(f"portrait {path} is not a readable image (corrupt or not JPEG/PNG/WebP)")
    return image, data


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise AvatarError(f"portrait {name} must be a uint8 image array (H, W[, 3])")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] != 3:
        raise AvatarError(f"portrait {name} has {image.shape[2]} channels; expected 3 (BGR)")
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise AvatarError(f"portrait {name} is {w}x{h}; use at least {MIN_SIDE}x{MIN_SIDE} pixels")
    if h * w > MAX_PIXELS:
        raise AvatarError(f"portrait {name} is {w}x{h}; scale it below {MAX_PIXELS // 1_000_000} megapixels")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class Avatar:
    """A portrait ready to animate: image, landmarks, meshes, masks (all in portrait pixels)."""

    image: np.ndarray
    """BGR uint8 portrait."""
    landmarks: np.ndarray
    """(68, 2) float64 iBUG landmarks in portrait pixels."""
    lower: LowerFaceMesh
    """Lips and jaw mesh."""
    eyes: tuple[EyeMesh, EyeMesh]
    """Meshes of the eye on the image's left and on its right."""
    irises: np.ndarray
    """(2, 3) iris centre x, y and radius in portrait pixels, same order as ``eyes``."""
    digest: str
    """SHA-256 (hex) of the portrait, naming its cache folder."""
    score: float = 0.0
    """dlib detection score of the face (higher is surer)."""

    @property
    def to_canonical(self) -> np.ndarray:
        """2x3 similarity from portrait pixels to the canonical face frame."""
        return similarity_to_canonical(self.landmarks)

    @property
    def from_canonical(self) -> np.ndarray:
        """2x3 similarity from the canonical face frame to portrait pixels."""
        return invert_affine(self.to_canonical)

    @property
    def mouth_rest(self) -> np.ndarray:
        """(20, 2) the portrait's own mouth in the canonical frame."""
        return apply_affine(self.to_canonical, self.landmarks[MOUTH])

    @property
    def eye_distance(self) -> float:
        """Inter-ocular distance in portrait pixels (one canonical unit)."""
        return float(np.hypot(*(self.landmarks[42:48].mean(0) - self.landmarks[36:42].mean(0))))

    @classmethod
    def build(cls, portrait: str | Path | np.ndarray | None, cache_dir: str | Path | None) -> "Avatar":
        """Load or build the avatar of ``portrait`` (a path, a BGR array, or None for the default).

        ``cache_dir`` keeps landmarks, meshes and masks per portrait digest; None disables caching.
        Raises :class:`AvatarError` for a missing, corrupt or face-less portrait.
        """
        if portrait is None:
            portrait = DEFAULT_PORTRAIT
        if isinstance(portrait, np.ndarray):
            name = "<array>"
            image = _check_image(portrait, name)
            digest = hashlib.sha256(repr(image.shape).encode() + image.tobytes()).hexdigest()
        else:
            name = str(portrait)
            raw, data = _read_image(Path(portrait))
            image = _check_image(raw, name)
            digest = hashlib.sha256(data).hexdigest()
        folder = Path(cache_dir) / digest[:16] if cache_dir is not None else None
        cached = _load_cache(folder) if folder is not None else None
        if cached is not None:
            landmarks, irises, score = cached
            log.info("avatar %s: landmarks from cache %s", name, folder)
        else:
            found = detect_landmarks(image)
            if found is None:
                raise AvatarError(f"no face found in portrait {name}: use a frontal, evenly lit photo of one face")
            landmarks, score = found
            iod = float(np.hypot(*(landmarks[42:48].mean(0) - landmarks[36:42].mean(0))))
            if iod < MIN_EYE_DISTANCE_PX:
                raise AvatarError(
                    f"face in portrait {name} is too small ({iod:.0f} px between the eyes, need"
                    f" {MIN_EYE_DISTANCE_PX}): crop closer or use a larger photo")
            irises = np.array([find_iris(image, landmarks[36:42]), find_iris(image, landmarks[42:48])])
            if folder is not None:
                _save_cache(folder, landmarks, irises, score, name, image)
            log.info("avatar %s: face found (score %.2f, %.0f px between eyes)", name, score, iod)
        return cls(
            image=image,
            landmarks=landmarks,
            lower=lower_face_mesh(landmarks),
            eyes=(eye_mesh(landmarks, right=False), eye_mesh(landmarks, right=True)),
            irises=irises,
            digest=digest,
            score=score,
        )


def find_iris(image: np.ndarray, eye: np.ndarray) -> tuple[float, float, float]:
    """Iris centre and radius of one eye: the centroid of the darkest pixels inside its contour."""
    x0, y0 = np.floor(eye.min(axis=0)).astype(int)
    x1, y1 = np.ceil(eye.max(axis=0)).astype(int) + 1
    patch = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY).astype(np.float32)
    mask = np.zeros(patch.shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(eye - (x0, y0)).astype(np.int32), 1)
    width = float(np.hypot(*(eye[3] - eye[0])))
    radius = 0.21 * width  # the iris spans about 40% of the eye opening's width
    vals = patch[mask > 0]
    if vals.size < 4:
        centre = eye.mean(axis=0)
        return float(centre[0]), float(centre[1]), radius
    dark = (patch <= np.percentile(vals, 30)) & (mask > 0)
    ys, xs = np.nonzero(dark)
    return float(xs.mean() + x0), float(ys.mean() + y0), radius


def _load_cache(folder: Path) -> tuple[np.ndarray, np.ndarray, float] | None:
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("version") != CACHE_VERSION:
            return None
        landmarks = np.load(folder / "landmarks.npy")
        irises = np.load(folder / "irises.npy")
        if landmarks.shape != (68, 2) or irises.shape != (2, 3) or not np.isfinite(landmarks).all():
            return None
        return landmarks.astype(np.float64), irises.astype(np.float64), float(meta.get("score", 0.0))
    except (OSError, ValueError, KeyError):
        return None


def _save_cache(folder: Path, landmarks: np.ndarray, irises: np.ndarray, score: float, name: str,
                image: np.ndarray) -> None:
    """Write landmarks, iris fits, meshes and the lower-face mask; a failure only costs a rebuild."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "landmarks.npy", landmarks)
        np.save(folder / "irises.npy", irises)
        lower = lower_face_mesh(landmarks)
        np.savez(folder / "mesh.npz", lower_points=lower.points, lower_triangles=lower.triangles,
                 lower_jaw_follow=lower.jaw_follow)
        cv2.imwrite(str(folder / "lower_face_mask.png"), lower_face_mask(image.shape[:2], landmarks))
        (folder / "meta.json").write_text(json.dumps(
            {"version": CACHE_VERSION, "source": name, "score": score, "shape": list(image.shape)}, indent=1))
    except OSError as exc:
        log.warning("avatar cache %s not written: %s", folder, exc)


def lower_face_mask(shape: tuple[int, int], landmarks: np.ndarray, feather: float = 0.25) -> np.ndarray:
    """uint8 mask of the lower face (jaw and the mouth region under the nose), feathered at its edge.

    The synthesised lower face is blended back into the original through this mask, as in the
    research we follow. The jaw outline is pushed out a quarter so a dropped chin stays fully
    inside; ``feather`` (inter-ocular distances) is the width of the soft edge, which ends before
    the mesh's fixed ring.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    iod = float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))
    centre = lm[33]
    poly = np.vstack([centre + 1.25 * (lm[2:15] - centre), lm[[35, 33, 31]]])
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255, cv2.LINE_AA)
    k = max(3, int(feather * iod) | 1)
    return cv2.GaussianBlur(mask, (k, k), 0)
