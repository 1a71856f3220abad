"""The inside of an open mouth, as a head has it: cavity, upper teeth, lower teeth, tongue.

The upper teeth belong to the skull: they stay where they are while the lips move, so an
opening mouth uncovers more of them and a closing one hides them behind the lips. The lower
teeth and the tongue ride on the jaw (the lower lip). The cavity darkens as the mouth opens
wider and towards its corners, where no light reaches. When the portrait shows its own teeth,
those are used (the part under the upper lip stays with the skull, the part over the lower lip
moves with the jaw), so at the portrait's own opening the photo comes back unchanged; a closed
portrait gets a built-in set drawn to the mouth's size and coloured from the photo. Everything
is drawn into a small box around the mouth and laid inside the animated inner-lip outline.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_SHIFT = 4
_ONE = 1 << _SHIFT


def _bgr(colour: np.ndarray) -> tuple[float, float, float]:
    return tuple(float(v) for v in np.clip(colour, 0, 255))  # type: ignore[return-value]


def _fix(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points) * _ONE).astype(np.int32)


@dataclass
class MouthColours:
    """Colours sampled from the portrait once (BGR floats)."""

    lip: np.ndarray
    teeth: np.ndarray


def sample_colours(image: np.ndarray, mouth: np.ndarray, teeth_visible: bool) -> MouthColours:
    """Lip colour from the outer lip ring; teeth colour from the visible teeth or a default."""
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_fix(mouth[:12])], 255, cv2.LINE_8, _SHIFT)
    inner = np.zeros_like(mask)
    cv2.fillPoly(inner, [_fix(mouth[12:])], 255, cv2.LINE_8, _SHIFT)
    lip_px = image[(mask > 0) & (inner == 0)]
    lip = np.median(lip_px, axis=0) if len(lip_px) else np.array([90.0, 90.0, 160.0])
    teeth = np.array([165.0, 190.0, 208.0])
    if teeth_visible:
        px = image[inner > 0].astype(np.float32)
        if len(px) >= 8:
            bright = px[px.sum(axis=1) >= np.percentile(px.sum(axis=1), 70)]
            teeth = np.median(bright, axis=0)
    return MouthColours(lip=lip.astype(np.float32), teeth=teeth.astype(np.float32))


def _catmull_rom(points: np.ndarray, per_segment: int = 5) -> np.ndarray:
    """An open Catmull-Rom curve through ``points`` (n, 2), ends kept, ``per_segment`` steps each."""
    p = np.vstack([points[:1], points, points[-1:]])
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    out.append(points[-1:])
    return np.vstack(out)


def smooth_outline(inner: np.ndarray) -> np.ndarray:
    """The inner-lip outline (8, 2: 60..67) as lips have it: each lip a smooth curve from corner to
    corner (the 8 points alone make a polygon whose lower lip is a V), the corners kept sharp."""
    top = _catmull_rom(inner[[0, 1, 2, 3, 4]])
    bottom = _catmull_rom(inner[[4, 5, 6, 7, 0]])
    return np.vstack([top[:-1], bottom[:-1]])


def polygon_gap(inner: np.ndarray) -> float:
    """Vertical opening (px) of an inner-lip polygon (8, 2: points 60..67): 62 to 66."""
    return float(inner[6, 1] - inner[2, 1])


@dataclass
class PhotoTeeth:
    """The portrait's own mouth interior (region pixels at rest geometry)."""

    patch: np.ndarray
    """float32 BGR box around the portrait's inner-lip polygon."""
    upper_alpha: np.ndarray
    """float32 (h, w): the part that stays with the skull (upper teeth)."""
    lower_alpha: np.ndarray
    """float32 (h, w): the part that moves with the jaw (lower teeth, tongue)."""
    origin: np.ndarray
    """Top-left of ``patch`` in region pixels."""

    @classmethod
    def from_photo(cls, region: np.ndarray, inner: np.ndarray) -> "PhotoTeeth":
        x0, y0 = np.floor(inner.min(axis=0)).astype(int)
        x1, y1 = np.ceil(inner.max(axis=0)).astype(int) + 1
        patch = region[y0:y1, x0:x1].astype(np.float32)
        m = np.zeros(patch.shape[:2], np.uint8)
        cv2.fillPoly(m, [_fix(inner - (x0, y0))], 255, cv2.LINE_AA, _SHIFT)
        m = cv2.erode(m, np.ones((2, 2), np.uint8))  # leave the photo's lip edge behind
        a = m.astype(np.float32) / 255
        # Split between the skull's share (upper teeth) and the jaw's (lower teeth, tongue): at
        # the darkest row between two rows of teeth; with one row of teeth showing (a smile),
        # all of it belongs to the skull. Above the first tooth is lip seen through a generous
        # outline: left to the cavity.
        top, bottom = inner[2, 1] - y0, inner[6, 1] - y0
        rows = np.arange(y1 - y0, dtype=np.float32)
        cx = int(round(inner[[2, 6], 0].mean() - x0))
        w = max(1, int(0.15 * (inner[4, 0] - inner[0, 0])))
        grey = cv2.cvtColor(region[y0:y1, max(x0 + cx - w, x0):x0 + cx + w + 1], cv2.COLOR_BGR2GRAY).astype(np.float32)
        profile = grey.mean(axis=1)
        lo, hi = int(np.clip(np.ceil(top), 0, len(profile) - 1)), int(np.clip(np.floor(bottom), 0, len(profile) - 1))
        split = float(bottom)
        first = float(top)
        if hi - lo >= 3:
            seg = profile[lo:hi + 1]
            bright = seg >= seg.min() + 0.6 * (seg.max() - seg.min())
            first = float(lo + int(np.argmax(bright))) - 0.5
            last = lo + len(seg) - 1 - int(np.argmax(bright[::-1]))
            a0 = lo + int(0.3 * len(seg))
            dark = a0 + int(np.argmin(profile[a0:last + 1])) if last > a0 else last
            if dark < last and profile[dark] < seg.max() - 0.45 * (seg.max() - seg.min()):
                split = float(dark)
        upper = np.clip((split - rows) / 1.5 + 0.5, 0.0, 1.0) * np.clip(rows - first, 0.0, 1.0)
        upper = upper[:, None]
        return cls(patch=patch, upper_alpha=(a * upper).astype(np.float32),
                   lower_alpha=(a * np.clip(rows - split + 0.5, 0.0, 1.0)[:, None]).astype(np.float32),
                   origin=np.array([x0, y0], np.float64))


class MouthInterior:
    """Paints the mouth interior of one frame into a region image, in place."""

    def __init__(self, colours: MouthColours, eye_distance_px: float, closed_inner: np.ndarray,
                 rest_inner: np.ndarray, photo: PhotoTeeth | None = None):
        """``closed_inner``: the inner-lip polygon (8, 2, region px) with the lips together, where
        the upper teeth hang (they never move); ``rest_inner``: the portrait's own; ``photo``:
        its own teeth, or None to draw a built-in set."""
        self.c = colours
        self.iod = float(eye_distance_px)
        self.closed = np.asarray(closed_inner, dtype=np.float64)
        self.rest = np.asarray(rest_inner, dtype=np.float64)
        self.photo = photo
        self._blur = max(3, int(0.012 * self.iod) | 1)
        # Upper teeth, fixed to the skull (so the same region-pixel arch every frame): its edge lies
        # just below where the lips meet in the middle and recedes towards the corners.
        left, right, centre = self.closed[0], self.closed[4], self.closed[2]
        half = max((right[0] - left[0]) / 2 * 0.9, 1.0)
        cx = (left[0] + right[0]) / 2
        u = np.linspace(-1.0, 1.0, 11)
        self._teeth_edge_y = centre[1] + 0.015 * self.iod
        y_side = (left[1] + right[1]) / 2 - 0.03 * self.iod
        lower_edge = np.stack([cx + u * half, self._teeth_edge_y + (y_side - self._teeth_edge_y) * u * u], axis=1)
        self._teeth_poly = np.vstack([lower_edge - (0, 0.16 * self.iod), lower_edge[::-1]])

    def seal(self, region: np.ndarray, inner: np.ndarray, outer_upper: np.ndarray | None = None) -> None:
        """Redraw where closed lips meet (``inner``: 8, 2, region px, upper and lower together) as
        lips have it: down each column, the upper lip's colour fading into the lower lip's, with a
        soft darker line where they touch.

        A portrait that shows its teeth is closed by warping its lips together, and the rows at
        the lips' inner edges then meet in a hard, stair-stepped seam holding slivers of tooth
        and of the shadow behind the lips (a thin upper lip is mostly such rows); a viewer, and
        dlib, read that as lips a little apart. The band replaces those rows: up to ``outer_upper``
        (the upper lip's outer contour, 5, 2: points 49..53) less a third of the lip, a little
        way into the lower lip. It fades out towards the corners, which stay the photo's own (a
        smile's corners are dark)."""
        h, w = region.shape[:2]
        line = _catmull_rom(np.vstack([inner[0], (inner[1] + inner[7]) / 2, (inner[2] + inner[6]) / 2,
                                       (inner[3] + inner[5]) / 2, inner[4]]), 8)
        order = np.argsort(line[:, 0])
        x0, x1 = int(np.ceil(line[:, 0].min())), int(np.floor(line[:, 0].max()))
        if x1 - x0 < 4:
            return
        xs = np.arange(x0, x1 + 1)
        ys = np.interp(xs, line[order, 0], line[order, 1])
        down = max(2.0, 0.03 * self.iod)
        up = np.full(len(xs), down)
        if outer_upper is not None:
            o = np.asarray(outer_upper, dtype=np.float64)
            oo = np.argsort(o[:, 0])
            lip = ys - np.interp(xs, o[oo, 0], o[oo, 1])
            up = np.clip(0.67 * lip, down, 0.08 * self.iod)
        top = np.clip(np.floor(ys - up).astype(int), 0, h - 1)
        bottom = np.clip(np.ceil(ys + down).astype(int), 0, h - 1)
        ok = (xs >= 0) & (xs < w) & (bottom > top)
        xs, ys, top, bottom = xs[ok], ys[ok], top[ok], bottom[ok]
        if not len(xs):
            return
        rows = top[None, :] + np.arange(int((bottom - top).max()) + 1)[:, None]  # (band, columns)
        inside = rows <= bottom[None, :]
        rows = np.minimum(rows, h - 1)
        upper = region[top, xs].astype(np.float32)
        lower = region[bottom, xs].astype(np.float32)
        t = np.clip((rows - top[None, :]) / np.maximum(bottom - top, 1)[None, :], 0.0, 1.0)[..., None]
        colour = upper[None] * (1.0 - t) + lower[None] * t
        # The line where the lips touch: dark (as a closed smile's corners are), about two pixels wide at 1080p.
        sigma = max(0.6, 0.005 * self.iod)
        colour *= (1.0 - 0.6 * np.exp(-(((rows - ys[None, :]) / sigma) ** 2)))[..., None]
        # Full strength over the middle of the mouth, fading out over the outer quarter each side.
        u = np.abs(xs - (x0 + x1) / 2) / max((x1 - x0) / 2, 1.0)
        fade = np.clip((1.0 - u) / 0.25, 0.0, 1.0)
        fade = (fade * fade * (3 - 2 * fade))[None, :, None] * inside[..., None]
        cols = np.broadcast_to(xs[None, :], rows.shape)
        old = region[rows, cols].astype(np.float32)
        region[rows, cols] = np.clip(old * (1.0 - fade) + colour * fade + 0.5, 0, 255).astype(np.uint8)

    def paint(self, region: np.ndarray, inner: np.ndarray) -> None:
        """Fill the inner-lip polygon ``inner`` (8, 2: points 60..67, region pixels) of ``region``."""
        opening = polygon_gap(inner)
        if opening < 0.25:
            return  # lips together: the warped lips already cover everything
        h, w = region.shape[:2]
        pad = 3
        x0 = max(int(np.floor(inner[:, 0].min())) - pad, 0)
        y0 = max(int(np.floor(min(inner[:, 1].min(), self.closed[:, 1].min()) - 0.16 * self.iod)) - pad, 0)
        x1 = min(int(np.ceil(inner[:, 0].max())) + pad, w)
        y1 = min(int(np.ceil(inner[:, 1].max())) + pad, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        box = region[y0:y1, x0:x1]
        bh, bw = box.shape[:2]
        o = np.array([x0, y0], np.float64)
        inner_b = inner - o
        depth = float(np.clip(opening / (0.35 * self.iod), 0.0, 1.0))
        width = float(np.hypot(*(inner[4] - inner[0])))
        # Cavity: dark red, darker high up (under the upper teeth) and the wider the mouth opens.
        top_y, bot_y = inner_b[2, 1], inner_b[6, 1]
        rows = np.arange(bh, dtype=np.float32)
        v = np.clip((rows - top_y) / max(bot_y - top_y, 1.0), 0.0, 1.0)
        cavity = np.maximum(self.c.lip * np.array([0.3, 0.26, 0.44], np.float32), (22.0, 20.0, 34.0))
        cavity = cavity * (1.0 - 0.35 * depth)
        paint = np.empty((bh, bw, 3), np.float32)
        paint[:] = (cavity[None, :] * (0.55 + 0.45 * v)[:, None])[:, None, :]
        jaw = inner_b[[4, 5, 6, 7, 0]]  # lower inner lip, corner to corner
        if opening > 0.05 * self.iod:
            # Tongue: a low, wide dome resting behind the lower teeth, moving with the jaw.
            centre = jaw[2] + np.array([0.0, 0.05 * opening])
            axes = (max(width * 0.3, 1.0), max(opening * 0.45, 1.0))
            tongue = self.c.lip * np.array([0.62, 0.58, 0.85], np.float32) * (1.0 - 0.25 * depth)
            cv2.ellipse(paint, tuple(int(v) for v in _fix(centre)), tuple(int(v) for v in _fix(axes)), 0, 180, 360,
                        _bgr(tongue), -1, cv2.LINE_AA, _SHIFT)
        if self.photo is None:
            # Lower teeth: a low arch just above the lower lip's middle, mostly hidden behind it.
            band = min(0.035 * self.iod, 0.2 * opening)
            xs3, ys3 = jaw[1:4, 0], jaw[1:4, 1]
            if abs(xs3[0] - xs3[2]) > 2:
                coef = np.polyfit(xs3 - xs3[1], ys3, 2)
                xl = xs3[1] + np.linspace(-0.9, 0.9, 9) * abs(xs3[0] - xs3[2]) / 2
                # A flat arch: the lower lip's curve, flattened, under its middle.
                yl = ys3[1] + 0.3 * (np.polyval(coef, xl - xs3[1]) - ys3[1])
                top_edge = np.stack([xl, yl - band], axis=1)
                cv2.fillPoly(paint, [_fix(np.vstack([top_edge, (top_edge + (0, 2 * band))[::-1]]))],
                             _bgr(self.c.teeth * 0.55), cv2.LINE_AA, _SHIFT)
        # Upper teeth (the arch prepared once, see __init__).
        y_c = self._teeth_edge_y - o[1]
        tooth = np.zeros((bh, bw), np.uint8)
        cv2.fillPoly(tooth, [_fix(self._teeth_poly - o)], 255, cv2.LINE_AA, _SHIFT)
        # The teeth catch light at their edge and sit in shadow under the lip.
        t = np.clip((rows - (y_c - 0.16 * self.iod)) / (0.175 * self.iod), 0.0, 1.0)
        light = (0.62 + 0.3 * t)[:, None, None]
        ta = (tooth.astype(np.float32) / 255)[..., None]
        paint = paint * (1 - ta) + (self.c.teeth * 0.9)[None, None, :] * light * ta
        paint = cv2.GaussianBlur(paint, (self._blur, self._blur), 0)
        # Corners of a mouth are in shadow: a horizontal falloff sells the depth.
        xs = np.arange(bw, dtype=np.float32)
        centre_x = (inner_b[0, 0] + inner_b[4, 0]) / 2
        shade = np.clip(1.25 - 0.8 * np.abs(xs - centre_x) / max(width / 2, 1.0), 0.45, 1.0) ** 1.3
        # ... into the lips' own shadow colour, not black: no dark wedges at the corners.
        corner = self.c.lip * 0.5
        paint = paint * shade[None, :, None] + corner[None, None, :] * (1.0 - shade)[None, :, None]
        if self.photo is not None:
            p = self.photo
            size = (bw, bh)
            shift = jaw[2] - (self.rest[6] - o)  # how far the jaw moved the lower lip's middle
            for alpha, offset in ((p.lower_alpha, p.origin - o + shift), (p.upper_alpha, p.origin - o)):
                m = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
                layer = cv2.warpAffine(p.patch, m, size, borderMode=cv2.BORDER_REPLICATE)
                a = cv2.warpAffine(alpha, m, size, borderMode=cv2.BORDER_CONSTANT)[..., None]
                paint = paint * (1.0 - a) + layer * a
        mask = np.zeros((bh, bw), np.uint8)
        cv2.fillPoly(mask, [_fix(smooth_outline(inner_b))], 255, cv2.LINE_AA, _SHIFT)
        a = mask.astype(np.float32)[..., None] / 255
        box[:] = (box * (1.0 - a) + paint * a).astype(np.uint8)
