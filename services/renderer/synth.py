"""Face synthesis: the avatar's portrait with a driven mouth, blinking eyes, gaze and head motion.

Everything that does not change per frame (the letterboxed portrait at output size, meshes,
masks, the iris-free eyes) is prepared once in the constructor. A frame then costs a piecewise
affine warp of the lower-face region (~200x150 px at 1080p), two tiny eye regions, a painted
mouth interior when open, and one whole-portrait affine for the head's breathing and sway
(the only full-size operation, ~6 ms at 1080p on one core).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from assistant.face.geometry import mouth_opening

from .avatar import Avatar, lower_face_mask
from .interior import MouthInterior, sample_colours
from .warp import MeshWarper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthSettings:
    """Output framing and animation limits of :class:`FaceSynth`."""

    width: int = 1280
    """Output width in pixels (up to 1920)."""
    height: int = 720
    """Output height in pixels (up to 1080)."""
    zoom: float = 1.4
    """1 shows the whole portrait height; larger crops towards the face (a bigger face on a kiosk
    screen, at the price of upscaling a small portrait)."""
    letterbox: str = "blur"
    """Fill beside a portrait narrower than the screen: ``blur`` (its own blurred edges) or ``black``."""
    max_jaw_drop: float = 0.4
    """Largest downward lower-lip travel in inter-ocular units; drivers asking more are clamped."""
    iris_travel: float = 0.2
    """Horizontal iris travel at gaze x = +-1, as a fraction of the eye's width."""
    teeth_at_rest: float = 0.03
    """Inner-lip gap (inter-ocular units) above which the photo's own teeth are kept and moved."""
    head_redraw_px: float = 0.5
    """The whole portrait is re-warped for head motion only once the pose has moved this many
    pixels since the last full warp; in between, only the mouth and eye regions are warped,
    with the pose of that last full warp (so they never tear from their surroundings). Idle
    sway and breathing move the portrait's corners ~0.1-0.2 px a frame: at 1080p this skips
    about two full warps in three, the bulk of a frame's cost, for a pose at most half a pixel
    behind. 0: always redraw."""


@dataclass(frozen=True)
class HeadPose:
    """Small head motion applied to the whole portrait, about a pivot in the neck."""

    dx: float = 0.0
    """Shift right, inter-ocular units."""
    dy: float = 0.0
    """Shift down, inter-ocular units."""
    roll_deg: float = 0.0
    """Tilt, degrees (positive: counter-clockwise on screen)."""
    scale: float = 1.0
    """Lean towards the viewer (> 1) or away."""


REST = HeadPose()


class _Eye:
    """One eye: iris moved for gaze, then the lid mesh closed for blinks."""

    def __init__(self, base: np.ndarray, mesh, iris: np.ndarray, to_out, travel: float):
        pts = to_out(mesh.points)
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - 1, 0)
        x1 = min(int(np.ceil(pts[:, 0].max())) + 2, base.shape[1])
        y1 = min(int(np.ceil(pts[:, 1].max())) + 2, base.shape[0])
        self.roi = (slice(y0, y1), slice(x0, x1))
        self.rest = pts - (x0, y0)
        self.closing = mesh.closing * _scale_of(to_out)
        self.warper = MeshWarper(self.rest, mesh.triangles, (x1 - x0, y1 - y0))
        src = base[self.roi]
        self.src = src.copy()
        contour = self.rest[:6]
        width = float(np.hypot(*(contour[3] - contour[0])))
        self.travel = (travel * width, 0.08 * width)
        centre = to_out(iris[None, :2])[0] - (x0, y0)
        radius = iris[2] * _scale_of(to_out)
        eye_mask = np.zeros(src.shape[:2], np.uint8)
        cv2.fillConvexPoly(eye_mask, np.round(contour * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
        disc = np.zeros_like(eye_mask)
        cv2.circle(disc, tuple(int(v) for v in np.round(centre * 16)), int(radius * 16), 255, -1, cv2.LINE_AA, 4)
        # The eye without its iris, for the iris to move over.
        hole = cv2.dilate(cv2.bitwise_and(disc, eye_mask), np.ones((3, 3), np.uint8))
        self.sclera = cv2.inpaint(src, (hole > 0).astype(np.uint8), 3, cv2.INPAINT_TELEA).astype(np.float32)
        self.eye_alpha = (eye_mask.astype(np.float32) / 255)[..., None]
        self.iris = src.astype(np.float32)
        self.iris_alpha = (disc.astype(np.float32) / 255) * self.eye_alpha[..., 0]
        self._size = (x1 - x0, y1 - y0)

    def draw(self, dst: np.ndarray, blink: float, gaze: tuple[float, float]) -> None:
        """Write this eye's region of ``dst`` (a frame-sized work image)."""
        gx, gy = gaze
        if abs(gx) < 1e-3 and abs(gy) < 1e-3:
            eye = self.src
        else:
            m = np.float32([[1, 0, gx * self.travel[0]], [0, 1, gy * self.travel[1]]])
            iris = cv2.warpAffine(self.iris, m, self._size, borderMode=cv2.BORDER_REPLICATE)
            a = cv2.warpAffine(self.iris_alpha, m, self._size)[..., None] * self.eye_alpha
            inner = self.sclera * (1 - a) + iris * a
            eye = (self.src * (1 - self.eye_alpha) + inner * self.eye_alpha).astype(np.uint8)
        if blink > 0.01:
            self.warper.warp(eye, self.rest + min(blink, 1.0) * self.closing, dst=dst[self.roi])
        else:
            dst[self.roi] = eye


def _scale_of(to_out) -> float:
    return float(to_out.scale)


class _Layout:
    """Where the portrait lands in the output frame: crop, scale, offset."""

    def __init__(self, avatar: Avatar, s: SynthSettings):
        hp, wp = avatar.image.shape[:2]
        face = avatar.landmarks[17:68].mean(axis=0)
        ch = min(hp, max(int(round(hp / max(s.zoom, 1.0))), 16))
        cw = min(wp, int(round(ch * s.width / s.height)))
        cx = int(np.clip(round(face[0] - cw / 2), 0, wp - cw))
        cy = int(np.clip(round(face[1] - ch * 0.45), 0, hp - ch))
        self.crop = (cx, cy, cw, ch)
        self.scale = s.height / ch
        pw = min(s.width, int(round(cw * self.scale)))
        self.region = (slice(0, s.height), slice((s.width - pw) // 2, (s.width - pw) // 2 + pw))
        self.offset = np.array([(s.width - pw) // 2 - cx * self.scale, -cy * self.scale])

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) * self.scale + self.offset


class FaceSynth:
    """Renders frames of one avatar at one output size; one instance per output."""

    def __init__(self, avatar: Avatar, settings: SynthSettings = SynthSettings()):
        if not (16 <= settings.width <= 3840 and 16 <= settings.height <= 2160):
            raise ValueError(f"output size {settings.width}x{settings.height} out of range")
        self.avatar, self.settings = avatar, settings
        lay = self.layout = _Layout(avatar, settings)
        self.base = self._base_frame()
        self.work = self.base.copy()
        self.landmarks_rest = lay(avatar.landmarks)
        self.eye_distance = avatar.eye_distance * lay.scale
        # Canonical displacement -> output pixels (the linear part of the avatar's inverse similarity).
        self.canon_to_px = avatar.from_canonical[:, :2] * lay.scale
        self.mouth_rest = avatar.mouth_rest
        self._lower_setup()
        self.eyes = [_Eye(self.base, mesh, iris, lay, settings.iris_travel)
                     for mesh, iris in zip(avatar.eyes, avatar.irises)]
        # Head motion pivots in the neck, below the chin, as a real head does.
        chin = self.landmarks_rest[8]
        self.pivot = chin + np.array([0.0, 0.6 * self.eye_distance]) - (lay.region[1].start, 0)
        # Head motion: the last full warp and its pose, and the regions redrawn every frame
        # (portrait-region pixels: rows y0..y1, columns x0..x1).
        self._warped: np.ndarray | None = None
        self._warped_m: np.ndarray | None = None
        rh, rw = self.base[lay.region].shape[:2]
        self._corners = np.array([[0, 0], [rw, 0], [0, rh], [rw, rh]], np.float64)
        col0 = lay.region[1].start
        self._dynamic = [(r[0].start, r[0].stop, r[1].start - col0, r[1].stop - col0)
                         for r in [self.lower_roi, *(eye.roi for eye in self.eyes)]]
        log.info("face synth %dx%d: portrait scale %.2f, %.0f px between eyes", settings.width,
                 settings.height, lay.scale, self.eye_distance)

    def _base_frame(self) -> np.ndarray:
        s, lay, img = self.settings, self.layout, self.avatar.image
        cx, cy, cw, ch = lay.crop
        crop = img[cy:cy + ch, cx:cx + cw]
        pw = lay.region[1].stop - lay.region[1].start
        base = np.zeros((s.height, s.width, 3), np.uint8)
        if pw < s.width and s.letterbox == "blur":
            small = cv2.resize(crop, (max(s.width // 24, 2), max(s.height // 24, 2)), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), 2.0)
            base[:] = (cv2.resize(small, (s.width, s.height), interpolation=cv2.INTER_LINEAR) * 0.55).astype(np.uint8)
        base[lay.region] = cv2.resize(crop, (pw, s.height), interpolation=cv2.INTER_CUBIC)
        return base

    def _lower_setup(self) -> None:
        mesh, lay = self.avatar.lower, self.layout
        pts = lay(mesh.points)
        h, w = self.base.shape[:2]
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - 1, 0)
        x1, y1 = min(int(np.ceil(pts[:, 0].max())) + 2, w), min(int(np.ceil(pts[:, 1].max())) + 2, h)
        self.lower_roi = (slice(y0, y1), slice(x0, x1))
        self.lower_rest = pts - (x0, y0)
        # Coarse maps once the region is big (1080p): same look, a quarter of the per-pixel work.
        step = 2 if (x1 - x0) * (y1 - y0) > 60_000 else 1
        self.lower_warper = MeshWarper(self.lower_rest, mesh.triangles, (x1 - x0, y1 - y0), step)
        full_mask = lower_face_mask((h, w), self.landmarks_rest)
        self.lower_alpha = (full_mask[self.lower_roi].astype(np.float32) / 255)[..., None]
        self.lower_src = self.base[self.lower_roi].copy()
        inner = self.lower_rest[mesh.mouth_slots[12:]]
        rest_gap = float(mouth_opening(self.mouth_rest))
        real_teeth = rest_gap >= self.settings.teeth_at_rest
        colours = sample_colours(self.lower_src, self.lower_rest[mesh.mouth_slots], real_teeth)
        teeth = alpha = None
        origin = (0, 0)
        if real_teeth:
            tx0, ty0 = np.floor(inner.min(axis=0)).astype(int)
            tx1, ty1 = np.ceil(inner.max(axis=0)).astype(int) + 1
            teeth = self.lower_src[ty0:ty1, tx0:tx1].astype(np.float32)
            m = np.zeros(teeth.shape[:2], np.uint8)
            cv2.fillPoly(m, [np.round((inner - (tx0, ty0)) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
            # The photo's lower inner lip edge is in the patch: fade its bottom rows out.
            ramp = np.clip(np.linspace(1.6, 0.0, ty1 - ty0), 0.0, 1.0)
            alpha = (m.astype(np.float32) / 255) * ramp[:, None].astype(np.float32)
            origin = (tx0, ty0)
        gap_px = MouthInterior.gap(inner)
        self.interior = MouthInterior(colours, self.eye_distance, teeth, alpha, origin, rest_opening=gap_px)

    def lower_points(self, mouth_offset: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Lower-face mesh points (region pixels) for a canonical mouth offset, and the mouth's pixel shift."""
        mesh = self.avatar.lower
        if mouth_offset is None:
            return self.lower_rest, np.zeros((20, 2))
        d = np.asarray(mouth_offset, dtype=np.float64).reshape(20, 2) @ self.canon_to_px.T
        drop = d[8:11, 1].mean()  # outer lower lip 56..58: the jaw follows it
        limit = self.settings.max_jaw_drop * self.eye_distance
        if drop > limit:  # scale all downward travel so the lips keep their shape
            d[:, 1] = np.where(d[:, 1] > 0, d[:, 1] * limit / drop, d[:, 1])
        pts = self.lower_rest.copy()
        pts[mesh.mouth_slots] += d
        pts += mesh.jaw_follow[:, None] * d[8:11].mean(axis=0)
        return pts, d

    def render(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0,
               gaze: tuple[float, float] = (0.0, 0.0), head: HeadPose = REST) -> np.ndarray:
        """One BGR frame (height, width, 3) uint8, a new array each call.

        ``mouth_offset``: (20, 2) canonical offset of the mouth from the driver's neutral (None = rest);
        ``blink``: 0 open .. 1 closed; ``gaze``: iris direction, x right / y down in [-1, 1] on screen;
        ``head``: small head motion.
        """
        work = self.work
        if mouth_offset is None or not np.any(np.abs(mouth_offset) > 1e-4):
            work[self.lower_roi] = self.lower_src
        else:
            pts, d = self.lower_points(mouth_offset)
            warped = self.lower_warper.warp(self.lower_src, pts)
            a = self.lower_alpha
            region = (warped * a + self.lower_src * (1 - a)).astype(np.uint8)
            slots = self.avatar.lower.mouth_slots
            self.interior.paint(region, pts[slots[12:]], d[13:16].mean(axis=0))
            work[self.lower_roi] = region
        for eye in self.eyes:
            eye.draw(work, blink, gaze)
        rows, cols = self.layout.region
        src = work[rows, cols]
        if head == REST:
            out = self.base.copy()
            out[rows, cols] = src
            return out
        m = self._effective_matrix(head)
        if self._warped is None or m is not self._warped_m:
            self._warped, self._warped_m = self.base.copy(), m
            cv2.warpAffine(src, m, (src.shape[1], src.shape[0]), dst=self._warped[rows, cols],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        out = self._warped.copy()
        # The mouth and eyes change every frame: warp just their regions, with the same pose as
        # the rest of the picture, so they land on exactly the pixels a full warp would give.
        dst = out[rows, cols]
        h, w = src.shape[:2]
        for y0, y1, x0, x1 in self._dynamic:
            corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) @ m[:, :2].T + m[:, 2]
            (a0, b0), (a1, b1) = np.floor(corners.min(0)).astype(int) - 2, np.ceil(corners.max(0)).astype(int) + 2
            a0, b0, a1, b1 = max(a0, 0), max(b0, 0), min(a1, w), min(b1, h)
            if a1 <= a0 or b1 <= b0:
                continue
            mt = m.copy()
            mt[:, 2] -= (a0, b0)
            cv2.warpAffine(src, mt, (a1 - a0, b1 - b0), dst=dst[b0:b1, a0:a1],
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        return out

    def _effective_matrix(self, head: HeadPose) -> np.ndarray:
        """The head matrix to draw with: that of the last full warp while the pose is within
        ``head_redraw_px`` of it, else the exact one."""
        m = self.head_matrix(head)
        last = self._warped_m
        if last is not None and self.settings.head_redraw_px > 0:
            moved = np.abs((m - last)[:, :2] @ self._corners.T + (m - last)[:, 2:3]).max()
            if moved < self.settings.head_redraw_px:
                return last
        return m

    def head_matrix(self, head: HeadPose) -> np.ndarray:
        """2x3 affine of the head motion in portrait-region pixels."""
        m = cv2.getRotationMatrix2D((float(self.pivot[0]), float(self.pivot[1])), head.roll_deg, head.scale)
        m[:, 2] += (head.dx * self.eye_distance, head.dy * self.eye_distance)
        return m

    def landmarks(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0,
                  head: HeadPose = REST) -> np.ndarray:
        """(68, 2) float32 landmarks of the frame :meth:`render` draws, in output pixels."""
        lm = self.landmarks_rest.copy()
        pts, _ = self.lower_points(mouth_offset)
        off = np.array([self.lower_roi[1].start, self.lower_roi[0].start])
        lm[48:68] = pts[self.avatar.lower.mouth_slots] + off
        lm[2:15] = pts[20:33] + off  # jaw contour follows the mesh (see mesh.lower_face_mesh order)
        for eye, idx in zip(self.eyes, (slice(36, 42), slice(42, 48))):
            lm[idx] += min(blink, 1.0) * eye.closing[:6]
        col0 = self.layout.region[1].start
        m = self._effective_matrix(head) if head != REST else self.head_matrix(head)
        lm[:, 0] -= col0
        lm = lm @ m[:, :2].T + m[:, 2]
        lm[:, 0] += col0
        return lm.astype(np.float32)
