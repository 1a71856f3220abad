"""The inside of an open mouth: dark cavity, upper and lower teeth, a hint of tongue.

Drawn with a few antialiased cv2 fills into a small box around the mouth, softened, and laid
inside the animated inner-lip outline. When the portrait already shows its teeth at rest (a
smile), those real teeth are kept and travel with the upper lip instead of painted ones, so at
rest the output is the photo itself and opening only adds cavity below them.
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
    teeth = np.array([200.0, 210.0, 220.0])
    if teeth_visible:
        px = image[inner > 0].astype(np.float32)
        if len(px) >= 8:
            bright = px[px.sum(axis=1) >= np.percentile(px.sum(axis=1), 70)]
            teeth = np.median(bright, axis=0)
    return MouthColours(lip=lip.astype(np.float32), teeth=teeth.astype(np.float32))


class MouthInterior:
    """Paints the mouth interior of one frame into a region image, in place."""

    def __init__(self, colours: MouthColours, eye_distance_px: float,
                 rest_teeth: np.ndarray | None = None, rest_teeth_alpha: np.ndarray | None = None,
                 rest_origin: tuple[int, int] = (0, 0), rest_opening: float = 0.0):
        """``rest_teeth``/``rest_teeth_alpha``: the portrait's own teeth (BGR, 0..1) at ``rest_origin``
        in region pixels, or None to paint teeth; ``rest_opening``: the photo's inner-lip gap in px."""
        self.rest_opening = rest_opening
        self.c = colours
        self.iod = eye_distance_px
        self.rest_teeth = rest_teeth
        self.rest_alpha = rest_teeth_alpha
        self.rest_origin = np.asarray(rest_origin, dtype=np.float64)

    @staticmethod
    def gap(inner: np.ndarray) -> float:
        """Vertical opening (px) of an inner-lip polygon (8, 2: points 60..67)."""
        return float(np.max(inner[5:8, 1]) - np.min(inner[1:4, 1]))

    def paint(self, region: np.ndarray, inner: np.ndarray, upper_shift: np.ndarray) -> None:
        """Fill the inner-lip polygon ``inner`` (8, 2: 60..67, region pixels) of ``region``.

        ``upper_shift`` is how far the upper lip moved from rest, which real teeth follow.
        """
        top = inner[[0, 1, 2, 3, 4]]
        bottom = inner[[4, 5, 6, 7, 0]]
        opening = self.gap(inner)
        has_real = self.rest_teeth is not None
        if opening - self.rest_opening < 0.3:
            return  # at rest or closing: the warped photo is right as it is
        h, w = region.shape[:2]
        pad = 3
        x0 = max(int(np.floor(inner[:, 0].min())) - pad, 0)
        y0 = max(int(np.floor(inner[:, 1].min())) - pad, 0)
        x1 = min(int(np.ceil(inner[:, 0].max())) + pad, w)
        y1 = min(int(np.ceil(inner[:, 1].max())) + pad, h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return
        box = region[y0:y1, x0:x1]
        o = np.array([x0, y0], np.float64)
        inner_b, top_b, bottom_b = inner - o, top - o, bottom - o
        # Cavity: dark red, darkest high up under the upper teeth where no light reaches.
        rows = np.linspace(0.55, 1.0, box.shape[0], dtype=np.float32)[:, None, None]
        cavity = self.c.lip * np.array([0.16, 0.14, 0.26], np.float32)
        paint = np.ascontiguousarray(np.broadcast_to(cavity * rows, box.shape).astype(np.uint8))
        width = float(np.hypot(*(inner[4] - inner[0])))
        lip_low = bottom_b[2]
        if opening > 1.0:
            # Tongue: a low, wide, dim-red dome resting behind the lower teeth.
            centre = lip_low + np.array([0.0, -0.05 * opening])
            axes = (max(width * 0.3, 1.0), max(opening * 0.4, 1.0))
            cv2.ellipse(paint, tuple(int(v) for v in _fix(centre)), tuple(int(v) for v in _fix(axes)), 0, 180, 360,
                        _bgr(self.c.lip * np.array([0.45, 0.42, 0.62])), -1, cv2.LINE_AA, _SHIFT)
            # Lower teeth: a thin band just above the middle of the lower lip, mostly hidden by it.
            band = min(0.08 * opening + 0.5, 0.04 * self.iod)
            mid = bottom_b[1:4]
            lower_teeth = np.vstack([mid, mid[::-1] + (0, -band)])
            cv2.fillPoly(paint, [_fix(lower_teeth)], _bgr(self.c.teeth * 0.7), cv2.LINE_AA, _SHIFT)
            if not has_real:
                # Painted upper teeth hanging from the upper lip.
                band = min(0.55 * opening, 0.085 * self.iod)
                upper_teeth = np.vstack([top_b, top_b[::-1] + (0, band)])
                cv2.fillPoly(paint, [_fix(upper_teeth)], _bgr(self.c.teeth), cv2.LINE_AA, _SHIFT)
        # Corners of a mouth are in shadow; a horizontal falloff sells the depth.
        xs = np.arange(box.shape[1], dtype=np.float32)
        centre_x = (inner_b[0, 0] + inner_b[4, 0]) / 2
        shade = np.clip(1.15 - 0.9 * np.abs(xs - centre_x) / max(width / 2, 1.0), 0.25, 1.0) ** 1.5
        paint = cv2.GaussianBlur((paint * shade[None, :, None]).astype(np.uint8), (3, 3), 0)
        if has_real:
            ox, oy = self.rest_origin + upper_shift - o
            m = np.float32([[1, 0, ox], [0, 1, oy]])
            size = (box.shape[1], box.shape[0])
            teeth = cv2.warpAffine(self.rest_teeth, m, size, borderMode=cv2.BORDER_CONSTANT)
            ta = cv2.warpAffine(self.rest_alpha, m, size, borderMode=cv2.BORDER_CONSTANT)[..., None]
            paint = (paint * (1.0 - ta) + teeth * ta).astype(np.uint8)
        alpha = np.zeros(box.shape[:2], np.uint8)
        cv2.fillPoly(alpha, [_fix(inner_b)], 255, cv2.LINE_AA, _SHIFT)
        # Fade the painted interior in over the first few pixels of opening so the photo's own
        # mouth does not pop into a painted one at speech onset.
        fade = float(np.clip((opening - self.rest_opening) / max(0.03 * self.iod, 1.0), 0.0, 1.0))
        a = alpha.astype(np.float32)[..., None] * (fade / 255)
        box[:] = (box * (1.0 - a) + paint * a).astype(np.uint8)
