"""Face synthesis: the avatar's portrait with a driven mouth, blinking eyes, gaze and head motion.

Layers, prepared once per output size: the person (the portrait), the room (the portrait with
the person removed and filled in, ``Avatar.plate``), and the head's matte (the person mask,
fading out down the neck). The body stays where it is over the room; only the head moves, so
the room never sways and what the head uncovers is the filled-in room. A frame costs a
piecewise affine warp of the lower face (lips closed over the portrait's own opening, then the
driver's mouth; jaw and chin follow with no blend seam because the mesh is the identity at its
border), the painted mouth interior, two eye regions, and, when the head has moved
``head_redraw_px`` since the last full warp, one affine warp and blend of the head's box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np

from assistant.config.schema import RendererSettings

from .avatar import Avatar
from .interior import MouthInterior, PhotoTeeth, polygon_gap, sample_colours
from .warp import MeshWarper

log = logging.getLogger(__name__)


# Animation limits: tuning of the face (what looks natural), not configuration.
MAX_JAW_DROP = 0.4
"""Largest downward lower-lip travel in inter-ocular units; drivers asking more are clamped."""
IRIS_TRAVEL = 0.2
"""Horizontal iris travel at gaze x = +-1, as a fraction of the eye's width."""
TEETH_AT_REST = 0.03
"""Inner-lip gap (inter-ocular units) above which the portrait's own mouth interior (its teeth) is
used; below it a built-in interior is drawn."""
CLOSE_UPPER = 0.4
"""Share of the portrait's own lip gap that the upper lip travels to close it (the lower lip and
the jaw travel the rest)."""
NECK_FADE = (0.35, 1.1)
"""The moving head layer fades out between these distances below the chin (inter-ocular units):
above, the head moves; below, the body stays still."""
SEAL_LIPS = True
"""Redraw where the lips meet when a portrait that shows its teeth is drawn with its lips closed."""
HEAD_REDRAW_PX = 1.0
"""The head is re-warped over the room only once its pose has moved this many pixels (at the head
box's farthest corner) since the last full warp; in between, only the mouth and eye regions are
redrawn, with the pose of that last full warp (so they never tear from their surroundings). Idle
sway and breathing move the head ~0.3-0.8 px a frame at 1080p: this skips a good part of the full
warps, the bulk of a frame's cost, for a pose at most this far behind. 0: always redraw."""


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

    def __init__(self, avatar: Avatar, s: RendererSettings):
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


# Closing the portrait's own lip gap: inner pairs (upper, lower) in the 20 mouth points, and how
# much of its inner neighbour's travel each outer lip point takes.
_INNER_PAIRS = ((13, 19), (14, 18), (15, 17))
_OUTER_UPPER = {1: (13, 0.5), 2: (13, 0.85), 3: (14, 0.9), 4: (15, 0.85), 5: (15, 0.5)}
_OUTER_LOWER = {7: (17, 0.5), 8: (17, 0.85), 9: (18, 0.9), 10: (19, 0.85), 11: (19, 0.5)}


def closing_offsets(mouth: np.ndarray, down: np.ndarray, upper_share: float, overlap: float = 0.0) -> np.ndarray:
    """(20, 2) pixel offsets that bring a mouth's inner lips together (zero for a closed mouth).

    Each inner pair meets at ``upper_share`` of its gap along ``down`` (the face's downward unit
    vector); the outer lip follows its inner neighbour so the lips keep their thickness."""
    mouth = np.asarray(mouth, dtype=np.float64)
    d = np.zeros((20, 2))
    for up, low in _INNER_PAIRS:
        # Pressed together a little (also a closed portrait's): no seam of the photo's inner lip
        # edge stays between the lips.
        gap = max(float(np.dot(mouth[low] - mouth[up], down)), 0.0) + overlap
        d[up] = upper_share * gap * down
        d[low] = -(1 - upper_share) * gap * down
    for table in (_OUTER_UPPER, _OUTER_LOWER):
        for k, (src, share) in table.items():
            d[k] = share * d[src]
    return d


def _box_of(alpha: np.ndarray, margin: int) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha > 1e-3)
    h, w = alpha.shape[:2]
    if not len(xs):
        return 0, 0, w, h
    return (max(int(xs.min()) - margin, 0), max(int(ys.min()) - margin, 0),
            min(int(xs.max()) + margin + 1, w), min(int(ys.max()) + margin + 1, h))


class FaceSynth:
    """Renders frames of one avatar at one output size; one instance per output."""

    def __init__(self, avatar: Avatar, settings: RendererSettings = RendererSettings(), *,
                 head_redraw_px: float = HEAD_REDRAW_PX):
        """Framing from the ``renderer`` section (``width``, ``height``, ``zoom``, ``letterbox``,
        ``still_room``); ``head_redraw_px``: see ``HEAD_REDRAW_PX``."""
        if not (16 <= settings.width <= 3840 and 16 <= settings.height <= 2160):
            raise ValueError(f"output size {settings.width}x{settings.height} out of range")
        self.avatar, self.settings = avatar, settings
        self.head_redraw_px = head_redraw_px
        lay = self.layout = _Layout(avatar, settings)
        self.base = self._letterboxed(avatar.image)
        self.work = self.base.copy()
        self.landmarks_rest = lay(avatar.landmarks)
        self.eye_distance = avatar.eye_distance * lay.scale
        # Canonical displacement -> output pixels (the linear part of the avatar's inverse similarity).
        self.canon_to_px = avatar.from_canonical[:, :2] * lay.scale
        down = self.canon_to_px @ np.array([0.0, 1.0])
        self.down = down / max(float(np.hypot(*down)), 1e-9)
        self.mouth_rest = avatar.mouth_rest
        self._layers()
        self._lower_setup()
        self.eyes = [_Eye(self.base, mesh, iris, lay, IRIS_TRAVEL)
                     for mesh, iris in zip(avatar.eyes, avatar.irises)]
        # Head motion pivots in the neck, below the chin, as a real head does (output pixels).
        self.pivot = self.landmarks_rest[8] + 0.6 * self.eye_distance * self.down
        # The last full composite and its pose; the regions redrawn every frame (x0, y0, x1, y1).
        self._warped: np.ndarray | None = None
        self._warped_m: np.ndarray | None = None
        self._dynamic_at: list = []
        x0, y0, x1, y1 = self.head_box
        self._corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64)
        self._dynamic = [(r[1].start, r[0].start, r[1].stop, r[0].stop)
                         for r in [self.lower_roi, *(eye.roi for eye in self.eyes)]]
        log.info("face synth %dx%d: portrait scale %.2f, %.0f px between eyes", settings.width,
                 settings.height, lay.scale, self.eye_distance)

    def _letterboxed(self, img: np.ndarray) -> np.ndarray:
        s, lay = self.settings, self.layout
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

    def _layers(self) -> None:
        """The still layer (body over the filled-in room) and the moving head's matte."""
        s, lay, av = self.settings, self.layout, self.avatar
        h, w = self.base.shape[:2]
        if not s.still_room or av.matte is None or av.plate is None:
            self.alpha = np.zeros((h, w), np.float32)
            self.alpha[lay.region] = 1.0
            self.still = self.base.copy()
            self.head_box = (0, 0, w, h)
            return
        cx, cy, cw, ch = lay.crop
        pw = lay.region[1].stop - lay.region[1].start
        person = np.zeros((h, w), np.float32)
        person[lay.region] = cv2.resize(av.matte[cy:cy + ch, cx:cx + cw], (pw, s.height),
                                        interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
        plate = self.base.copy()
        plate[lay.region] = cv2.resize(av.plate[cy:cy + ch, cx:cx + cw], (pw, s.height), interpolation=cv2.INTER_CUBIC)
        # Along the face's vertical axis: 1 above the neck fade, 0 below it.
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        chin = self.landmarks_rest[8]
        below = (xs - chin[0]) * self.down[0] + (ys - chin[1]) * self.down[1]
        a, b = (v * self.eye_distance for v in NECK_FADE)
        head = np.clip((b - below) / max(b - a, 1.0), 0.0, 1.0).astype(np.float32)
        # ... and within an ellipse around the head (long hair on the shoulders stays still).
        lm = self.landmarks_rest
        centre = lm[27] - 0.3 * self.eye_distance * self.down
        across = np.array([self.down[1], -self.down[0]])
        u = ((xs - centre[0]) * across[0] + (ys - centre[1]) * across[1]) / (1.75 * self.eye_distance)
        v = ((xs - centre[0]) * self.down[0] + (ys - centre[1]) * self.down[1]) / (2.6 * self.eye_distance)
        head *= np.clip((1.0 - np.sqrt(u * u + v * v)) / 0.15, 0.0, 1.0)
        head = head * head * (3 - 2 * head)
        self.alpha = np.ascontiguousarray(person * head, dtype=np.float32)
        # The still layer is what shows where the head is not: the body over the room, weighted
        # so that with the head in place the picture is exactly person over room (no room
        # leaking through the neck where the head fades into the body).
        body = np.ascontiguousarray(person * (1 - head), dtype=np.float32)
        room = np.ascontiguousarray(1 - person, dtype=np.float32)
        covered = body + room < 1e-3  # under an opaque head: the room, for when the head moves
        room[covered] = 1.0
        self.still = cv2.blendLinear(self.base, plate, body, room)
        margin = int(np.ceil(0.35 * self.eye_distance)) + 2
        self.head_box = _box_of(self.alpha, margin)

    def _lower_setup(self) -> None:
        mesh, lay = self.avatar.lower, self.layout
        pts = lay(mesh.points)
        h, w = self.base.shape[:2]
        x0, y0 = np.maximum(np.floor(pts.min(axis=0)).astype(int) - 1, 0)
        x1, y1 = min(int(np.ceil(pts[:, 0].max())) + 2, w), min(int(np.ceil(pts[:, 1].max())) + 2, h)
        self.lower_roi = (slice(y0, y1), slice(x0, x1))
        self.lower_rest = pts - (x0, y0)
        # Coarse maps once the region is big (1080p): same look, a quarter of the per-pixel work.
        area = (x1 - x0) * (y1 - y0)
        step = 3 if area > 300_000 else 2 if area > 60_000 else 1
        self.lower_warper = MeshWarper(self.lower_rest, mesh.triangles, (x1 - x0, y1 - y0), step)
        self.lower_src = self.base[self.lower_roi].copy()
        mouth = self.lower_rest[mesh.mouth_slots]
        # The portrait's own lip gap is closed first: rest is lips together, whatever the photo.
        self.closing = closing_offsets(mouth, self.down, CLOSE_UPPER, 0.012 * self.eye_distance)
        rest_gap = float(polygon_gap(mouth[12:])) / self.eye_distance
        real_teeth = rest_gap >= TEETH_AT_REST
        colours = sample_colours(self.lower_src, mouth, real_teeth)
        photo = PhotoTeeth.from_photo(self.lower_src, mouth[12:]) if real_teeth else None
        self.interior = MouthInterior(colours, self.eye_distance, (mouth + self.closing)[12:], mouth[12:], photo)
        # A portrait showing its teeth is closed by warping: its lips' inner edges meet in a seam
        # that is redrawn (``MouthInterior.seal``); a closed portrait's own seam is left as it is.
        self._seal = real_teeth and SEAL_LIPS
        self._closed_pts = self._mesh_points(self.closing)

    def _mesh_points(self, d: np.ndarray) -> np.ndarray:
        mesh = self.avatar.lower
        pts = self.lower_rest.copy()
        pts[mesh.mouth_slots] += d
        pts += mesh.jaw_follow[:, None] * d[8:11].mean(axis=0)
        return pts

    def lower_points(self, mouth_offset: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Lower-face mesh points (region pixels) for a canonical mouth offset from the driver's
        neutral (None: at rest, lips together), and the driver's pixel offset."""
        if mouth_offset is None:
            return self._closed_pts, np.zeros((20, 2))
        d = np.asarray(mouth_offset, dtype=np.float64).reshape(20, 2) @ self.canon_to_px.T
        drop = float(np.dot(d[8:11].mean(axis=0), self.down))  # outer lower lip 56..58: the jaw follows it
        limit = MAX_JAW_DROP * self.eye_distance
        if drop > limit:  # scale all downward travel so the lips keep their shape
            along = d @ self.down
            d = d - np.where(along > 0, along * (1 - limit / drop), 0.0)[:, None] * self.down
        return self._mesh_points(self.closing + d), d

    def render(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0,
               gaze: tuple[float, float] = (0.0, 0.0), head: HeadPose = REST) -> np.ndarray:
        """One BGR frame (height, width, 3) uint8, a new array each call.

        ``mouth_offset``: (20, 2) canonical offset of the mouth from the driver's neutral (None =
        rest, lips together); ``blink``: 0 open .. 1 closed; ``gaze``: iris direction, x right /
        y down in [-1, 1] on screen; ``head``: small head motion.
        """
        work = self.work
        if mouth_offset is not None and not np.any(np.abs(mouth_offset) > 1e-4):
            mouth_offset = None
        pts, _ = self.lower_points(mouth_offset)
        if mouth_offset is None and not np.any(self.closing):
            work[self.lower_roi] = self.lower_src
        else:
            inner = pts[self.avatar.lower.mouth_slots[12:]]
            # Lips together: the mouth's inside is not drawn at all (its texture, squeezed to a
            # line, would leave a seam of tooth or shadow between the lips).
            skip = self.avatar.lower.interior if polygon_gap(inner) < 1.0 else None
            region = self.lower_warper.warp(self.lower_src, pts, skip=skip)
            self.interior.paint(region, inner)
            if skip is not None and self._seal:
                self.interior.seal(region, inner, pts[self.avatar.lower.mouth_slots[1:6]])
            work[self.lower_roi] = region
        for eye in self.eyes:
            eye.draw(work, blink, gaze)
        m = self._effective_matrix(head)
        if self._warped is None or m is not self._warped_m:
            self._warped, self._warped_m = self.still.copy(), m
            self._composite(self._warped, self._placement(m, self.head_box))
            self._dynamic_at = [self._placement(m, box) for box in self._dynamic]
        out = self._warped.copy()
        # The mouth and eyes change every frame: composite just their regions, with the same pose
        # as the rest of the head, so they land on exactly the pixels a full warp would give.
        for placement in self._dynamic_at:
            self._composite(out, placement)
        return out

    def _placement(self, m: np.ndarray, box: tuple[int, int, int, int]):
        """Where the source box ``box`` (x0, y0, x1, y1) lands under ``m``: the output slice, the
        shifted matrix and the head's alpha there (None where it is 1 throughout: no blend)."""
        x0, y0, x1, y1 = box
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) @ m[:, :2].T + m[:, 2]
        h, w = self.base.shape[:2]
        (a0, b0), (a1, b1) = np.floor(corners.min(0)).astype(int) - 2, np.ceil(corners.max(0)).astype(int) + 2
        a0, b0, a1, b1 = max(a0, 0), max(b0, 0), min(a1, w), min(b1, h)
        if a1 <= a0 or b1 <= b0:
            return None
        mt = m.copy()
        mt[:, 2] -= (a0, b0)
        size = (a1 - a0, b1 - b0)
        alpha = cv2.warpAffine(self.alpha, mt, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if alpha.min() >= 1.0 - 1e-6:
            return (slice(b0, b1), slice(a0, a1)), mt, size, None, None
        return (slice(b0, b1), slice(a0, a1)), mt, size, alpha, np.float32(1) - alpha

    def _composite(self, out: np.ndarray, placement) -> None:
        """Draw the head layer (``work`` through the placement's matrix) over the still layer."""
        if placement is None:
            return
        where, mt, size, alpha, rest = placement
        if alpha is None:
            cv2.warpAffine(self.work, mt, size, dst=out[where], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
            return
        person = cv2.warpAffine(self.work, mt, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[where] = cv2.blendLinear(person, self.still[where], alpha, rest)

    def _effective_matrix(self, head: HeadPose) -> np.ndarray:
        """The head matrix to draw with: that of the last full warp while the pose is within
        ``head_redraw_px`` of it, else the exact one."""
        m = self.head_matrix(head)
        last = self._warped_m
        if last is not None and self.head_redraw_px > 0:
            moved = np.abs((m - last)[:, :2] @ self._corners.T + (m - last)[:, 2:3]).max()
            if moved < self.head_redraw_px:
                return last
        return m

    def head_matrix(self, head: HeadPose) -> np.ndarray:
        """2x3 affine of the head motion in output pixels."""
        m = cv2.getRotationMatrix2D((float(self.pivot[0]), float(self.pivot[1])), head.roll_deg, head.scale)
        m[:, 2] += (head.dx * self.eye_distance, head.dy * self.eye_distance)
        return m

    def landmarks(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0,
                  head: HeadPose = REST) -> np.ndarray:
        """(68, 2) float32 landmarks of the frame :meth:`render` draws, in output pixels."""
        lm = self.landmarks_rest.copy()
        if mouth_offset is not None and not np.any(np.abs(mouth_offset) > 1e-4):
            mouth_offset = None
        pts, _ = self.lower_points(mouth_offset)
        off = np.array([self.lower_roi[1].start, self.lower_roi[0].start])
        lm[48:68] = pts[self.avatar.lower.mouth_slots] + off
        lm[2:15] = pts[20:33] + off  # jaw contour follows the mesh (see mesh.lower_face_mesh order)
        for eye, idx in zip(self.eyes, (slice(36, 42), slice(42, 48))):
            lm[idx] += min(blink, 1.0) * eye.closing[:6]
        m = self._effective_matrix(head) if self._warped_m is not None else self.head_matrix(head)
        lm = lm @ m[:, :2].T + m[:, 2]
        return lm.astype(np.float32)
