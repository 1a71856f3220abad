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
from assistant.paths import package_file

from .mesh import EyeMesh, LowerFaceMesh, eye_mesh, lower_face_mesh

log = logging.getLogger(__name__)

PORTRAITS = package_file("services.renderer", "assets", "portraits")
DEFAULT_PORTRAIT = PORTRAITS / "grid_lrwp9a.png"
"""A GRID corpus speaker (CC BY 4.0, recorded with consent for reuse; see ``assets/PROVENANCE.md``)."""

CACHE_VERSION = 2
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
    matte: np.ndarray | None = None
    """uint8 (H, W) person mask (255 = head, hair, neck, shoulders), feathered; None: not computed."""
    plate: np.ndarray | None = None
    """BGR background with the person removed and filled in, for what a moving head uncovers."""

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
        matte = plate = None
        if cached is not None:
            landmarks, irises, score = cached
            matte, plate = _load_layers(folder, image.shape)
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
            landmarks = refine_inner_lips(image, landmarks)
            irises = np.array([find_iris(image, landmarks[36:42]), find_iris(image, landmarks[42:48])])
            if folder is not None:
                _save_cache(folder, landmarks, irises, score, name, image)
            log.info("avatar %s: face found (score %.2f, %.0f px between eyes)", name, score, iod)
        if matte is None or plate is None:
            matte = person_matte(image, landmarks)
            plate = background_plate(image, matte)
            if folder is not None:
                _save_layers(folder, matte, plate)
        return cls(
            image=image,
            landmarks=landmarks,
            lower=lower_face_mesh(landmarks),
            eyes=(eye_mesh(landmarks, right=False), eye_mesh(landmarks, right=True)),
            irises=irises,
            digest=digest,
            score=score,
            matte=matte,
            plate=plate,
        )


# Inner-lip pairs (upper, lower) and the outer lip points above and below them.
_LIP_COLUMNS = ((61, 67, 50, 58), (62, 66, 51, 57), (63, 65, 52, 56))


def refine_inner_lips(image: np.ndarray, landmarks: np.ndarray, margin: bool = True) -> np.ndarray:
    """Landmarks with the inner lip moved to where the lips really end when teeth show.

    dlib's predictor puts the inner lip of a mouth showing its teeth on the teeth (its training
    faces mostly keep the mouth closed), which would leave teeth outside the mouth once the lips
    close. Down each inner-lip column, the run of pixels clearly unlike the lips (teeth are much
    brighter, the cavity much darker, in Lab lightness) that holds dlib's gap is the real opening."""
    lm = np.asarray(landmarks, dtype=np.float64).copy()
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).astype(np.float32)
    iod = float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))
    # The lips' own lightness: pixels just inside the outer lip contour, above and below.
    ref = []
    for up, low, out_up, out_low in _LIP_COLUMNS:
        for a, b in ((lm[out_up], lm[up]), (lm[out_low], lm[low])):
            for t in (0.2, 0.35):
                x, y = np.round(a + t * (b - a)).astype(int)
                if 0 <= y < lab.shape[0] and 0 <= x < lab.shape[1]:
                    ref.append(lab[y, x])
    if not ref:
        return lm
    lip_l = float(np.median(np.array(ref)[:, 0]))
    # The middle column decides: a dark line between closed lips is not an open mouth because
    # one side of it happens to be a little wider.
    for up, low, out_up, out_low in (_LIP_COLUMNS[1], _LIP_COLUMNS[0], _LIP_COLUMNS[2]):
        if up != 62 and lm[66, 1] - lm[62, 1] < 0.05 * iod:
            break
        x = int(round((lm[up, 0] + lm[low, 0]) / 2))
        y0 = int(np.ceil(lm[out_up, 1] + 0.1 * (lm[up, 1] - lm[out_up, 1])))
        y1 = int(np.floor(lm[out_low, 1] - 0.1 * (lm[out_low, 1] - lm[low, 1])))
        if not (0 <= x < lab.shape[1] and 0 <= y0 < y1 < lab.shape[0]):
            continue
        column = lab[y0:y1 + 1, max(x - 1, 0):x + 2, 0].mean(axis=1)
        inside = np.abs(column - lip_l) > 25
        a = int(np.clip(np.floor(lm[up, 1]) - y0, 0, len(column) - 1))
        b = int(np.clip(np.ceil(lm[low, 1]) - y0 + 2, a + 1, len(column)))
        mid = a + int(np.argmax(np.abs(column[a:b] - lip_l)))
        if not inside[mid]:
            continue
        top = mid
        while top > 0 and inside[top - 1]:
            top -= 1
        bottom = mid
        while bottom < len(column) - 1 and inside[bottom + 1]:
            bottom += 1
        new_up, new_low = y0 + top - 0.5, y0 + bottom + 0.5
        if new_low - new_up >= 0.05 * iod and new_low - new_up > (lm[low, 1] - lm[up, 1]) + 0.01 * iod:
            lm[up, 1] = min(lm[up, 1], new_up)
            lm[low, 1] = max(lm[low, 1], new_low)
    if margin and lm[66, 1] - lm[62, 1] >= 0.05 * iod:
        # Teeth show: take the lips' inner edge a little generously, so that closing the lips
        # leaves no sliver of tooth in the lip texture (never past a third of the lip).
        for up, low, out_up, out_low in _LIP_COLUMNS:
            lm[up, 1] = max(lm[up, 1] - 0.03 * iod, lm[up, 1] - (lm[up, 1] - lm[out_up, 1]) / 3)
            lm[low, 1] = min(lm[low, 1] + 0.02 * iod, lm[low, 1] + (lm[out_low, 1] - lm[low, 1]) / 3)
    return lm


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

    Kept in the avatar cache for tools that blend a generated lower face back into the photo;
    the classic synthesiser needs no blend (its mesh is the identity at its border). The jaw
    outline is pushed out a quarter so a dropped chin stays fully inside; ``feather`` (inter-ocular distances) is the width of the soft edge, which ends before
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


def person_matte(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """uint8 mask of the person (head, hair, neck, shoulders) against the room: GrabCut seeded by
    the 68 landmarks (the face is surely the person, the top corners surely the room, hair above
    the brows and the body below the chin probably the person), run at <= 400 px, then upsampled
    and feathered by a few pixels. Classical and deterministic; computed once per portrait."""
    h, w = image.shape[:2]
    f = min(1.0, 400.0 / max(h, w))
    small = cv2.resize(image, (max(int(round(w * f)), 8), max(int(round(h * f)), 8)), interpolation=cv2.INTER_AREA)
    lm = np.asarray(landmarks, dtype=np.float64) * f
    sh, sw = small.shape[:2]
    iod = float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))
    mask = np.full((sh, sw), cv2.GC_PR_BGD, np.uint8)
    centre = lm[27:31].mean(0)
    face_w = float(lm[16, 0] - lm[0, 0])
    # Probably the person: hair above the brows, the body below the chin widening to the shoulders.
    top = max(0, int(lm[19:25, 1].min() - 1.4 * iod))
    hair = np.array([[lm[0, 0] - 0.15 * face_w, lm[0, 1]], [centre[0] - 0.65 * face_w, top + 0.3 * iod],
                     [centre[0], top], [centre[0] + 0.65 * face_w, top + 0.3 * iod],
                     [lm[16, 0] + 0.15 * face_w, lm[16, 1]], [lm[12, 0], lm[12, 1]], [lm[4, 0], lm[4, 1]]])
    cv2.fillPoly(mask, [np.round(hair).astype(np.int32)], cv2.GC_PR_FGD)
    chin = lm[8]
    body = np.array([[lm[5, 0], lm[5, 1]], [lm[11, 0], lm[11, 1]], [centre[0] + 1.6 * face_w, sh - 1],
                     [centre[0] - 1.6 * face_w, sh - 1]])
    cv2.fillPoly(mask, [np.round(body).astype(np.int32)], cv2.GC_PR_FGD)
    # Surely the person: the face inside its jaw and brows, and the neck right under the chin.
    face = np.vstack([lm[0:17], lm[26:16:-1] - (0, 0.1 * iod)])
    cv2.fillPoly(mask, [np.round(centre + 0.9 * (face - centre)).astype(np.int32)], cv2.GC_FGD)
    neck = np.array([[chin[0] - 0.35 * iod, chin[1]], [chin[0] + 0.35 * iod, chin[1]],
                     [chin[0] + 0.35 * iod, min(chin[1] + 0.6 * iod, sh - 1)],
                     [chin[0] - 0.35 * iod, min(chin[1] + 0.6 * iod, sh - 1)]])
    cv2.fillPoly(mask, [np.round(neck).astype(np.int32)], cv2.GC_FGD)
    # Surely the room: a thin border along the top and down the sides above the shoulders.
    border = max(2, sw // 40)
    mask[:border, :][mask[:border, :] == cv2.GC_PR_BGD] = cv2.GC_BGD
    side_rows = slice(0, int(min(chin[1], sh)))
    for cols in (slice(0, border), slice(sw - border, sw)):
        part = mask[side_rows, cols]
        part[part == cv2.GC_PR_BGD] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.setRNGSeed(0)  # GrabCut seeds its colour models with k-means: the same portrait, the same matte
        cv2.grabCut(small, mask, None, bgd, fgd, 5, cv2.GC_INIT_WITH_MASK)
        person = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    except cv2.error as exc:  # a flat image: fall back to the seeds
        log.warning("person matte: GrabCut failed (%s); using the landmark outline", exc)
        person = np.where((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    # Keep the blob holding the face; close pinholes (eyes, teeth that GrabCut called room).
    n, labels, stats, _ = cv2.connectedComponentsWithStats(person, 8)
    c = labels[int(np.clip(centre[1], 0, sh - 1)), int(np.clip(centre[0], 0, sw - 1))]
    if c > 0:
        person = np.where(labels == c, 255, 0).astype(np.uint8)
    inv = cv2.bitwise_not(person)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(inv, 4)
    for i in range(1, n):
        x, y, bw, bh, area = stats[i]
        if x > 0 and y > 0 and x + bw < sw and y + bh < sh:
            person[labels == i] = 255
    k = max(3, int(0.04 * iod) | 1)
    person = cv2.morphologyEx(person, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    person = cv2.resize(person, (w, h), interpolation=cv2.INTER_LINEAR)
    feather = max(3, int(0.03 * iod / f) | 1)
    return cv2.GaussianBlur(person, (feather, feather), 0)


def background_plate(image: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """The room without the person: the person (dilated) filled in from the surrounding room
    (Telea inpainting at <= 480 px, upsampled); only its edge ever shows, where the head moved."""
    h, w = image.shape[:2]
    f = min(1.0, 480.0 / max(h, w))
    size = (max(int(round(w * f)), 8), max(int(round(h * f)), 8))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    hole = cv2.resize(matte, size, interpolation=cv2.INTER_LINEAR) > 8
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((7, 7), np.uint8))
    filled = cv2.inpaint(small, hole, 9, cv2.INPAINT_TELEA)
    filled = cv2.GaussianBlur(filled, (0, 0), 2.0)
    up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_CUBIC)
    big_hole = cv2.resize(hole * 255, (w, h), interpolation=cv2.INTER_LINEAR)[..., None].astype(np.float32) / 255
    return (image * (1 - big_hole) + up * big_hole).astype(np.uint8)


def _load_layers(folder: Path, shape: tuple[int, ...]) -> tuple[np.ndarray | None, np.ndarray | None]:
    matte = cv2.imread(str(folder / "person_matte.png"), cv2.IMREAD_GRAYSCALE)
    plate = cv2.imread(str(folder / "background.png"), cv2.IMREAD_COLOR)
    if matte is None or plate is None or matte.shape != tuple(shape[:2]) or plate.shape != tuple(shape):
        return None, None
    return matte, plate


def _save_layers(folder: Path, matte: np.ndarray, plate: np.ndarray) -> None:
    try:
        cv2.imwrite(str(folder / "person_matte.png"), matte)
        cv2.imwrite(str(folder / "background.png"), plate)
    except (OSError, cv2.error) as exc:
        log.warning("avatar cache %s: person layers not written: %s", folder, exc)
