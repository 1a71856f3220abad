"""Triangle meshes over the portrait that the synthesiser deforms: lower face (lips + jaw) and eyes.

Every mesh has rest points in portrait pixels, triangles, and a ring of fixed points around it, so
the warp is exactly the identity at its border and needs no seam hiding. The lips use a hand-made
triangulation (outer lip ring, inner lip ring, mouth interior) because a Delaunay triangulation
happily builds triangles that cross from the upper to the lower lip, which would smear lip
texture across the opening mouth; everything around the lips is Delaunay.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Lip triangles in 68-point numbering: upper lip ring, lower lip ring.
_LIP_TRIANGLES = [
    (48, 49, 60), (49, 50, 61), (49, 61, 60), (50, 51, 62), (50, 62, 61), (51, 52, 62),
    (52, 63, 62), (52, 53, 63), (53, 64, 63), (53, 54, 64),
    (54, 55, 64), (55, 56, 65), (55, 65, 64), (56, 57, 66), (56, 66, 65), (57, 58, 66),
    (58, 67, 66), (58, 59, 67), (59, 60, 67), (59, 48, 60),
]
# Mouth interior (inside the inner lip); the synthesiser paints over it when the mouth opens.
_INTERIOR_TRIANGLES = [(60, 61, 67), (61, 66, 67), (61, 62, 66), (62, 63, 66), (63, 65, 66), (63, 64, 65)]
# How much of the lower lip's movement each jaw contour point follows (the chin follows it,
# the jaw angle near the ear hardly moves).
_JAW_FOLLOW = {2: 0.0, 3: 0.03, 4: 0.12, 5: 0.3, 6: 0.55, 7: 0.8, 8: 0.95, 9: 0.8, 10: 0.55,
               11: 0.3, 12: 0.12, 13: 0.03, 14: 0.0}
_FIXED_FACE = (29, 30, 31, 32, 33, 34, 35)


@dataclass(frozen=True)
class LowerFaceMesh:
    """Lips and jaw: the mouth points follow the driver, jaw points follow the lower lip."""

    points: np.ndarray
    """(n, 2) rest positions in portrait pixels."""
    triangles: np.ndarray
    """(m, 3) int32 indices into ``points``."""
    mouth_slots: np.ndarray
    """(20,) indices in ``points`` of the 68-point mouth 48..67, in that order."""
    jaw_follow: np.ndarray
    """(n,) fraction of the lower lip's displacement each point follows (0 for fixed points)."""
    interior: np.ndarray
    """(k,) indices into ``triangles`` of the mouth-interior triangles."""


@dataclass(frozen=True)
class EyeMesh:
    """One eye: the upper lid slides down over the eye by ``blink`` times ``closing``."""

    points: np.ndarray
    """(n, 2) rest positions in portrait pixels; the first six are the eye contour 36..41/42..47."""
    triangles: np.ndarray
    """(m, 3) int32 indices into ``points``."""
    closing: np.ndarray
    """(n, 2) displacement of each point when the eye is fully closed."""


def delaunay(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles (m, 3) of a point set, as indices."""
    pts = np.asarray(points, dtype=np.float64)
    lo, hi = pts.min(axis=0) - 10, pts.max(axis=0) + 10
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    for p in pts:
        subdiv.insert((float(p[0]), float(p[1])))
    tris = []
    for t in subdiv.getTriangleList().reshape(-1, 3, 2):
        idx = [int(np.argmin(np.hypot(*(pts - v).T))) for v in t]
        if len(set(idx)) == 3 and all(np.hypot(*(pts[i] - v)) < 0.5 for i, v in zip(idx, t)):
            tris.append(idx)
    return np.asarray(tris, dtype=np.int32).reshape(-1, 3)


def _inside(poly: np.ndarray, pt: np.ndarray) -> bool:
    return cv2.pointPolygonTest(poly.astype(np.float32).reshape(-1, 1, 2), (float(pt[0]), float(pt[1])), False) > 0


def lower_face_mesh(landmarks: np.ndarray, ring_scale: float = 1.5) -> LowerFaceMesh:
    """Mesh of the lower face from 68 landmarks; the fixed ring is the jaw pushed out ``ring_scale``x."""
    lm = np.asarray(landmarks, dtype=np.float64)
    centre = lm[33]
    names: list[int | str] = list(range(48, 68)) + list(_JAW_FOLLOW) + list(_FIXED_FACE)
    pts = [lm[i] for i in names if isinstance(i, int)]
    follow = [0.0] * 20 + list(_JAW_FOLLOW.values()) + [0.0] * len(_FIXED_FACE)
    # A point between the lower lip and the chin keeps the chin rigid while the jaw drops.
    pts.append((lm[57] + lm[8]) / 2)
    follow.append(0.95)
    for i in range(1, 16):  # fixed ring around everything that moves
        pts.append(centre + ring_scale * (lm[i] - centre))
        follow.append(0.0)
    for i in (28, 29):
        pts.append(lm[i])
        follow.append(0.0)
    pts_arr = np.asarray(pts)
    tris = delaunay(pts_arr)
    outer = lm[48:60]
    slot = {g: k for k, g in enumerate(range(48, 68))}  # 68-point index -> mesh index
    keep = [t for t in tris if not _inside(outer, pts_arr[t].mean(axis=0))]
    lips = [[slot[g] for g in t] for t in _LIP_TRIANGLES]
    interior = [[slot[g] for g in t] for t in _INTERIOR_TRIANGLES]
    all_tris = np.asarray(keep + lips + interior, dtype=np.int32)
    return LowerFaceMesh(
        points=pts_arr,
        triangles=all_tris,
        mouth_slots=np.arange(20),
        jaw_follow=np.asarray(follow),
        interior=np.arange(len(keep) + len(lips), len(all_tris)),
    )


def eye_mesh(landmarks: np.ndarray, right: bool) -> EyeMesh:
    """Mesh of one eye (``right``: the subject's left eye, points 42..47, on the image's right)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eye = lm[42:48] if right else lm[36:42]
    corner_a, up_a, up_b, corner_b, low_b, low_a = eye  # contour order: corner, 2 upper, corner, 2 lower
    width = float(np.hypot(*(corner_b - corner_a)))
    up = np.array([0.0, -1.0])
    # Closed-lid line: the lower lid rises a little, the upper lid comes down to just above it
    # (a thin dark lash line stays, as on a real closed eye).
    close_a, close_b = low_a + 0.15 * (up_a - low_a), low_b + 0.15 * (up_b - low_b)
    gap = 0.03 * width * up
    closing = [np.zeros(2), close_a + gap - up_a, close_b + gap - up_b, np.zeros(2),
               close_b - low_b, close_a - low_a]
    pts = list(eye)
    # Lid skin above the lid line stretches down with it.
    for p, c in ((up_a, closing[1]), (up_b, closing[2])):
        pts.append(p + 0.3 * width * up)
        closing.append(0.35 * c)
    centre = eye.mean(axis=0)
    for fx in (-0.95, 0.0, 0.95):
        for fy in (-0.85, 0.55):
            pts.append(centre + width * np.array([fx, fy]))
            closing.append(np.zeros(2))
    for fx in (-0.95, 0.95):
        pts.append(centre + width * np.array([fx, -0.15]))
        closing.append(np.zeros(2))
    pts_arr = np.asarray(pts)
    return EyeMesh(points=pts_arr, triangles=delaunay(pts_arr), closing=np.asarray(closing))
