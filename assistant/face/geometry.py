"""The canonical face frame in which mouth landmarks travel between drivers and renderers.

Landmarks follow the iBUG 68-point scheme. A face is brought into the canonical frame by the
similarity transform (rotation, uniform scale, translation) that puts the centre of the left eye
(points 36-41) at (-0.5, 0) and the centre of the right eye (points 42-47) at (+0.5, 0): one unit
is the inter-ocular distance, x grows to the image's right, y grows downward. The mouth (points
48-67, ``MOUTH``) of a typical face at rest then sits near y = 1.0 to 1.2.

Every mouth driver returns an array of shape (frames, 20, 2) in this frame; a renderer maps it
onto its avatar with the avatar's own inverse transform.
"""

from __future__ import annotations

import numpy as np

MOUTH = slice(48, 68)
"""Indices of the 20 mouth points (outer lip 48-59, inner lip 60-67) in 68-point landmarks."""
N_MOUTH = 20
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
# Inner-lip centre points within the 20 mouth points (global 62 and 66).
INNER_TOP = 62 - 48
INNER_BOTTOM = 66 - 48
# Mouth corners within the 20 mouth points (global 48 and 54).
CORNER_LEFT = 0
CORNER_RIGHT = 6


def similarity_to_canonical(landmarks: np.ndarray) -> np.ndarray:
    """2x3 affine matrix that maps image points of a 68-point face to the canonical frame."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2):
        raise ValueError(f"expected 68x2 landmarks, got {pts.shape}")
    left, right = pts[LEFT_EYE].mean(axis=0), pts[RIGHT_EYE].mean(axis=0)
    d = right - left
    iod = float(np.hypot(*d))
    if iod < 1e-6:
        raise ValueError("degenerate landmarks: eyes coincide")
    cos, sin = d / iod / iod, np.array([-d[1], d[0]]) / iod / iod
    rot = np.array([[cos[0], cos[1]], [sin[0], sin[1]]])  # rotates d onto +x and scales by 1/iod
    centre = (left + right) / 2
    return np.hstack([rot, (-rot @ centre)[:, None]])


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to an array of points (..., 2)."""
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    a = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(a)[:2]


def to_canonical(landmarks: np.ndarray) -> np.ndarray:
    """68 image points -> the same 68 points in the canonical frame."""
    return apply_affine(similarity_to_canonical(landmarks), landmarks)


def mouth_opening(mouth: np.ndarray) -> np.ndarray:
    """Inner-lip opening (distance between points 62 and 66) of canonical mouths (..., 20, 2)."""
    mouth = np.asarray(mouth)
    return np.linalg.norm(mouth[..., INNER_BOTTOM, :] - mouth[..., INNER_TOP, :], axis=-1)


def mouth_width(mouth: np.ndarray) -> np.ndarray:
    """Corner-to-corner width (points 48 and 54) of canonical mouths (..., 20, 2)."""
    mouth = np.asarray(mouth)
    return np.linalg.norm(mouth[..., CORNER_RIGHT, :] - mouth[..., CORNER_LEFT, :], axis=-1)
