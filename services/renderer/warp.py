"""Piecewise-affine warp of a small image region through one ``cv2.remap``.

Per frame the destination triangles are rasterised into an index image (one ``fillConvexPoly``
per triangle, a few microseconds each), each pixel looks up its triangle's destination->source
affine, and one remap resamples the region. This is exact piecewise-affine warping without the
seams of per-triangle ``warpAffine`` + mask pasting, and costs about a millisecond for a
200x150 region. Pixels outside every triangle map to themselves (the mesh's border is fixed).
"""

from __future__ import annotations

import cv2
import numpy as np

_SHIFT = 4  # fillConvexPoly sub-pixel bits
_MIN_AREA = 0.05  # px^2; a collapsed triangle has no inverse and covers nothing worth drawing


class MeshWarper:
    """Warps a fixed rectangular region whose rest mesh is known; call :meth:`maps` per frame."""

    def __init__(self, rest_points: np.ndarray, triangles: np.ndarray, size: tuple[int, int], step: int = 1):
        """``rest_points`` (n, 2) in region pixels, ``triangles`` (m, 3), ``size`` = (width, height).

        ``step`` > 1 computes the maps on a grid that much coarser and upsamples them bilinearly:
        a piecewise-affine map is linear inside each triangle, so this is exact there and off by
        a fraction of a pixel along triangle edges, for ``step``**2 times less work.
        """
        self.rest = np.asarray(rest_points, dtype=np.float64)
        self.triangles = np.asarray(triangles, dtype=np.int32)
        w, h = int(size[0]), int(size[1])
        self.size = (w, h)
        wc, hc = -(-w // step), -(-h // step)
        self._coarse = (wc, hc) if step > 1 else None
        # Coarse samples sit where cv2.resize expects them, so upsampling reproduces linear maps.
        gx = (np.arange(wc, dtype=np.float32) + 0.5) * (w / wc) - 0.5
        gy = (np.arange(hc, dtype=np.float32) + 0.5) * (h / hc) - 0.5
        self._xs, self._ys = np.meshgrid(gx.astype(np.float32), gy.astype(np.float32))
        self._to_grid = np.array([wc / w, hc / h])
        self._index = np.empty((hc, wc), np.int32)
        src = self.rest[self.triangles]  # (m, 3, 2)
        self._src_t = np.transpose(src, (0, 2, 1))  # (m, 2, 3)
        self._identity = np.array([1, 0, 0, 0, 1, 0], np.float32)
        # A pixel that the rasteriser counts into a thin triangle but lies just outside it is
        # extrapolated by that triangle's affine, which can fling it far away: clamp every
        # source position to its triangle's source bounding box (the border maps to the whole region).
        lo, hi = src.min(axis=1) - 0.5, src.max(axis=1) + 0.5
        self._lo = np.vstack([lo, [0, 0]]).astype(np.float32)
        self._hi = np.vstack([hi, [w - 1, h - 1]]).astype(np.float32)

    def maps(self, points: np.ndarray, skip: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``remap`` maps (x, y float32, region-sized) that move the rest mesh onto ``points``;
        triangles in ``skip`` (indices) are not drawn (their neighbours' rasterisation covers them)."""
        dst = np.asarray(points, dtype=np.float64)[self.triangles]  # (m, 3, 2)
        m = len(dst)
        hom = np.ones((m, 3, 3))
        hom[:, :2, :] = np.transpose(dst, (0, 2, 1))
        det = np.linalg.det(hom)
        ok = np.abs(det) > 2 * _MIN_AREA
        if skip is not None and len(skip):
            ok[np.asarray(skip)] = False
        hom[np.abs(det) <= 2 * _MIN_AREA] = np.eye(3)
        affine = np.empty((m + 1, 6), np.float32)
        affine[:m] = (self._src_t @ np.linalg.inv(hom)).reshape(m, 6)
        affine[m] = self._identity
        self._index.fill(m)
        grid_dst = (dst + 0.5) * self._to_grid - 0.5
        fixed = np.round(grid_dst * (1 << _SHIFT)).astype(np.int32)
        # Thin triangles first, so that their rasterisation slop is overdrawn by sturdier neighbours.
        edges = np.linalg.norm(dst - np.roll(dst, 1, axis=1), axis=2).max(axis=1)
        order = np.argsort(np.abs(det) / np.maximum(edges, 1e-6) ** 2)
        for i in order[ok[order]]:
            cv2.fillConvexPoly(self._index, fixed[i], int(i), cv2.LINE_8, _SHIFT)
        idx = self._index
        a = affine[idx]  # (h, w, 6)
        mx = a[..., 0] * self._xs + a[..., 1] * self._ys + a[..., 2]
        my = a[..., 3] * self._xs + a[..., 4] * self._ys + a[..., 5]
        lo, hi = self._lo[idx], self._hi[idx]
        np.clip(mx, lo[..., 0], hi[..., 0], out=mx)
        np.clip(my, lo[..., 1], hi[..., 1], out=my)
        if self._coarse is not None:
            mx = cv2.resize(mx, self.size, interpolation=cv2.INTER_LINEAR)
            my = cv2.resize(my, self.size, interpolation=cv2.INTER_LINEAR)
        return mx, my

    def warp(self, src: np.ndarray, points: np.ndarray, dst: np.ndarray | None = None,
             skip: np.ndarray | None = None) -> np.ndarray:
        """Resample ``src`` (the region, rest geometry) so its mesh lands on ``points``."""
        mx, my = self.maps(points, skip)
        return cv2.remap(src, mx, my, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)
