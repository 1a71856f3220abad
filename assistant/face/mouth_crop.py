"""The mouth crop shared by neural training and run time (numpy + OpenCV, no torch).

A crop is a square of the canonical face frame (see ``assistant.face.geometry``) resampled to
``size`` pixels, so every face, whatever its size or tilt in the picture, gives the network the
same framing. The network's condition is a drawing of the 20 mouth landmarks in that crop;
training and the renderer draw it with the same function, so the network never sees drawings
made another way.
"""

from __future__ import annotations

import cv2
import numpy as np

from .geometry import LEFT_EYE, RIGHT_EYE, similarity_to_canonical

_OUTER = list(range(0, 12))
_INNER = list(range(12, 20))


def canonical_to_crop(centre: tuple[float, float], half: float, size: int) -> np.ndarray:
    """2x3 affine from canonical coordinates to crop pixels (pixel centres at integer + 0.5)."""
    s = size / (2.0 * half)
    return np.array([[s, 0.0, (half - centre[0]) * s], [0.0, s, (half - centre[1]) * s]])


def compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2x3 affine of ``a`` after ``b``."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def image_to_crop(landmarks: np.ndarray, centre, half: float, size: int) -> np.ndarray:
    """2x3 affine from image pixels of a face with 68 ``landmarks`` to its mouth crop."""
    return compose(canonical_to_crop(centre, half, size), similarity_to_canonical(landmarks))


def smooth_eye_tracks(landmarks: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(T, 68, 2) landmarks with the eye points low-passed over time.

    The crop is placed by the eye centres; dlib's per-frame jitter of a pixel or two there would
    shake every crop and teach the network flicker. The head moves slowly, so a Gaussian over
    +-3 sigma frames removes the jitter and keeps the motion.
    """
    lm = np.array(landmarks, dtype=np.float64)
    if len(lm) < 3 or sigma <= 0:
        return lm
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for idx in (LEFT_EYE, RIGHT_EYE):
        pts = lm[:, idx]
        padded = np.concatenate([np.repeat(pts[:1], r, 0), pts, np.repeat(pts[-1:], r, 0)])
        lm[:, idx] = sum(w * padded[i : i + len(pts)] for i, w in enumerate(k))
    return lm


def draw_mouth(mouth_px: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8 drawing of 20 mouth points given in crop pixels.

    Channel 0: outer lip contour; 1: inner lip contour; 2: the filled opening between the inner
    lips (where teeth and the dark mouth show). Lines scale with the crop so 64 and 256 pixel
    models see the same picture.
    """
    pts = np.asarray(mouth_px, dtype=np.float64)
    if pts.shape != (20, 2) or not np.isfinite(pts).all():
        raise ValueError(f"expected 20 finite mouth points, got shape {pts.shape}")
    out = np.zeros((size, size, 3), np.uint8)
    shift = 4
    fx = np.round(pts * (1 << shift)).astype(np.int32)
    thick = max(1, int(round(size / 64)))
    planes = [np.zeros((size, size), np.uint8) for _ in range(3)]
    cv2.polylines(planes[0], [fx[_OUTER]], True, 255, thick, cv2.LINE_AA, shift)
    cv2.polylines(planes[1], [fx[_INNER]], True, 255, thick, cv2.LINE_AA, shift)
    cv2.fillPoly(planes[2], [fx[_INNER]], 255, cv2.LINE_AA, shift)
    for c in range(3):
        out[..., c] = planes[c]
    return out


def blend_mask(size: int, rx: float, ry: float, cy: float, feather: float) -> np.ndarray:
    """(size, size) float32 alpha in [0, 1]: a feathered ellipse, exactly 0 near the crop's edge.

    The soft edge lies inside the ellipse, so the alpha reaches zero before the crop ends and the
    composited frame outside the ellipse keeps its own pixels exactly.
    """
    yy, xx = (np.mgrid[0:size, 0:size] + 0.5) / size
    d = np.sqrt(((xx - 0.5) / rx) ** 2 + ((yy - cy) / ry) ** 2)  # 1 on the ellipse
    edge = feather / max(min(rx, ry), 1e-6)
    a = np.clip((1.0 - d) / max(edge, 1e-6), 0.0, 1.0)
    a = a * a * (3 - 2 * a)  # smoothstep: no visible ring where the ramp starts
    return a.astype(np.float32)


def warp_to_crop(image: np.ndarray, to_crop: np.ndarray, size: int) -> np.ndarray:
    """The crop of ``image`` through the 2x3 affine ``to_crop``.

    A large face shrunk into a small crop is first halved with ``pyrDown`` (blur + subsample) as
    often as needed, so the crop is not aliased by a plain bilinear lookup.
    """
    m = np.array(to_crop, dtype=np.float64)
    img = image
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    while scale < 0.5 and min(img.shape[:2]) > 2 * size:
        img = cv2.pyrDown(img)
        m = m.copy()
        m[:, :2] *= 2.0  # pyrDown: new pixel (x, y) is old (2x + 0.5, 2y + 0.5), close enough
        scale *= 2.0
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def invert(m: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine."""
    return cv2.invertAffineTransform(np.asarray(m, np.float64))
