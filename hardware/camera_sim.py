"""The simulated physical camera: real faces in a room with its own light, seen through a sensor model.

A scene is radiance (arbitrary units, roughly cd/m2): a background made of a daylight layer (a
window, which does not flicker) and a room-lit layer (walls, lit by mains-powered lamps that
flicker at twice the mains frequency), plus people cut out of real videos
(``shared/data/talking/grid``), walking along paths of (time, lateral position, distance).

Each frame is rendered like a sensor would see it::

    radiance += glare x mean(radiance)            (veiling glare of lens and cover glass)
    signal = radiance x exposure_s x K            (fraction of full well, before gain)
    noise  = shot noise (sqrt of electrons) + read noise, per pixel
    pixel  = gamma( quantise_12bit( clip( (signal + noise) x gain, 0, 1) ) )  ->  8-bit BGR
    frame  = JPEG-decode( JPEG-encode(pixel, quality 80) )   (the MJPG stream of a UVC camera)

The lamp's light is integrated over the exposure window, so exposures that are not a multiple of
the flicker period beat against the frame rate exactly as on a real camera. Exposure and gain
written at frame n take effect at frame n + ``latency_frames`` (UVC cameras lag 1-3 frames).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .camera import CameraError, ControlLimits, Frame

log = logging.getLogger(__name__)

#: Sensor: fraction of full well per (radiance unit x second); full well and read noise in electrons.
SENSOR_K = 0.33
FULL_WELL_E = 5_000.0  # a 1/4" webcam sensor with ~2 um pixels
READ_NOISE_E = 3.0
#: Veiling glare: light scattered by a cheap lens and the kiosk's cover glass, as a fraction of the
#: mean radiance in view, added everywhere. It is why a backlit face looks washed out.
GLARE = 0.005
#: Modulation depth of lamp light at twice the mains frequency (LED drivers and fluorescents).
FLICKER_DEPTH = 0.25
#: Width of a detector's face box on an adult face, in metres (the distance estimate assumes it too).
FACE_WIDTH_M = 0.15
#: Frames of each GRID clip the scene shows; enrolment takes its photos from the frames before.
SCENE_FRAMES = range(30, 75, 2)
ENROL_FRAMES = range(0, 25, 4)

_LUT_BITS = 12
_GAMMA_LUT = np.round(255.0 * (np.arange(2**_LUT_BITS, dtype=np.float64) / (2**_LUT_BITS - 1)) ** (1 / 2.2)).astype(np.uint8)
_LINEAR_LUT = ((np.arange(256, dtype=np.float32) / 255.0) ** 2.2).astype(np.float32)


def default_faces_dir() -> Path | None:
    """``shared/data/talking/grid`` beside the repository (or under ``$ASSISTANT_SHARED_DATA``)."""
    env = os.environ.get("ASSISTANT_SHARED_DATA")
    repo = Path(__file__).resolve().parents[1]
    for cand in ([Path(env) / "talking" / "grid"] if env else []) + [repo.parent / "shared" / "data" / "talking" / "grid"]:
        if cand.is_dir():
            return cand
    return None


def clip_path(clip: str) -> Path:
    """A talking clip by name: ``bbaf2n`` (GRID), ``wild/retalking1`` (``talking/wild``), or a path."""
    p = Path(clip)
    if p.suffix and p.is_file():
        return p
    grid = default_faces_dir()
    if grid is None:
        raise CameraError("the talking clips are missing: ../shared/data/talking (or $ASSISTANT_SHARED_DATA)")
    found = [c for c in (grid / f"{clip}.mpg", grid.parent / f"{clip}.mp4") if c.is_file()]
    if not found:
        raise CameraError(f"no talking clip {clip!r} in {grid.parent}")
    return found[0]


def clip_frames(path: Path, indices: range | None = None) -> list[np.ndarray]:
    """Decode BGR frames of a video (``indices``: which ones; default all)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        if indices is None or i in indices:
            frames.append(img)
        i += 1
    cap.release()
    if not frames:
        raise CameraError(f"no frames in {path}")
    return frames


@dataclass
class PersonSprite:
    """A person cut out of a studio video: linear albedo, alpha, and where the face is."""

    name: str
    albedo: list[np.ndarray]
    """Linear reflectance per frame, float32 HxWx3 (studio-lit pixels taken as reflectance)."""
    alpha: list[np.ndarray]
    """Matte per frame, float32 HxW in 0..1."""
    face: tuple[float, float, float, float]
    """Face box (x, y, w, h) in sprite pixels, from a face detector on the studio frames."""
    fps: float = 25.0
    """Frame rate of the clip the frames come from."""

    @classmethod
    def from_clip(cls, path: Path, indices: range | None = SCENE_FRAMES, max_face_px: float = 0.0) -> "PersonSprite":
        """Frames ``indices`` (None: all) of a clip. GRID clips (``.mpg``, blue backdrop) are keyed; other
        clips (a real room behind the speaker) get a soft oval matte around head and shoulders.
        ``max_face_px`` > 0 shrinks large clips so the face is at most that wide (memory)."""
        import cv2

        frames = clip_frames(path, indices)
        cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        boxes = [b for f in frames[:: max(1, len(frames) // 5)] for b in cascade.detectMultiScale(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60))]
        if not boxes:
            raise CameraError(f"no face found in {path}")
        face = tuple(float(v) for v in np.median(np.array(boxes), axis=0))
        if max_face_px and face[2] > max_face_px:
            z = max_face_px / face[2]
            frames = [cv2.resize(np.ascontiguousarray(f), None, fx=z, fy=z, interpolation=cv2.INTER_AREA) for f in frames]
            face = tuple(v * z for v in face)
        keyed = path.suffix.lower() == ".mpg"
        oval = None if keyed else _oval_matte(frames[0].shape[:2], face)  # type: ignore[arg-type]
        cap = cv2.VideoCapture(str(path))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 25.0) or 25.0
        cap.release()
        albedo, alpha = [], []
        pad = frames[0].shape[0]  # extend the torso down by one frame height
        for f in frames:
            a = _key_background(f) if keyed else oval
            f = cv2.copyMakeBorder(f, 0, pad, 0, 0, cv2.BORDER_REPLICATE)
            a = cv2.copyMakeBorder(a, 0, pad, 0, 0, cv2.BORDER_REPLICATE)
            albedo.append(_LINEAR_LUT[f])
            alpha.append(a)
        return cls(path.stem, albedo, alpha, face, fps)  # type: ignore[arg-type]


def _oval_matte(shape: tuple[int, int], face: tuple[float, float, float, float]) -> np.ndarray:
    """Head and shoulders of a speaker filmed in a room: a soft oval around the face over a wider torso."""
    import cv2

    h, w = shape
    x, y, fw, fh = face
    m = np.zeros((h, w), np.float32)
    cv2.ellipse(m, (int(x + fw / 2), int(y + fh * 0.45)), (int(fw * 0.75), int(fh * 0.95)), 0, 0, 360, 1.0, -1)
    cv2.rectangle(m, (int(x - fw * 0.4), int(y + fh * 1.1)), (int(x + fw * 1.4), h), 1.0, -1)
    k = max(3, int(fw * 0.12) | 1)
    return cv2.GaussianBlur(m, (k, k), 0)


def _key_background(bgr: np.ndarray) -> np.ndarray:
    """Soft matte of a person in front of the GRID studio's plain blue backdrop."""
    import cv2

    # The backdrop is a saturated cyan-to-blue; skin, hair and most clothes are not.
    hsv = cv2.cvtColor(bgr, cv2.COLOR_BGR2HSV)
    backdrop = (hsv[..., 0] >= 70) & (hsv[..., 0] <= 130) & (hsv[..., 1] >= 35) & (hsv[..., 2] >= 40)
    mask = (~backdrop).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((9, 9), np.uint8))
    # keep the biggest blob (the person); stray studio reflections are small
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if n > 1:
        mask = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    return cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)


@dataclass
class Walk:
    """A person's path: keyframes (t_s, x_m, distance_m); absent before the first and after the last."""

    sprite: PersonSprite
    keys: list[tuple[float, float, float]]
    talk: list[tuple[float, float, float]] | None = None
    """When the person talks: (scene start s, clip offset s, duration s); between talks the clip's
    ``rest_s`` frame shows (a still face). None: the clip loops (ping-pong) all the time."""
    rest_s: float = 0.0
    """Clip time of the frame shown while not talking."""
    yaw: float = 1.0
    """Horizontal squeeze of the person (< 1: turned slightly away from the camera)."""
    mime: list[tuple[float, float, float]] | None = None
    """Like ``talk``, but nothing is heard: mouth motion in silence (chewing, smiling, miming)."""

    def frame(self, t: float) -> int:
        """Which of the sprite's frames shows at scene time ``t``."""
        n = len(self.sprite.albedo)
        if self.talk is None and self.mime is None:
            k = int(t * 25) % (2 * n - 2) if n > 1 else 0  # ping-pong through the clip at 25 fps
            return k if k < n else 2 * n - 2 - k
        for start, offset, dur in (self.talk or []) + (self.mime or []):
            if start <= t < start + dur:
                return min(n - 1, int((offset + t - start) * self.sprite.fps))
        return min(n - 1, int(self.rest_s * self.sprite.fps))

    def at(self, t: float) -> tuple[float, float] | None:
        if not self.keys or t < self.keys[0][0] or t > self.keys[-1][0]:
            return None
        for (t0, x0, d0), (t1, x1, d1) in zip(self.keys, self.keys[1:]):
            if t0 <= t <= t1:
                u = 0.0 if t1 == t0 else (t - t0) / (t1 - t0)
                return x0 + u * (x1 - x0), d0 + u * (d1 - d0)
        return self.keys[-1][1], self.keys[-1][2]


@dataclass
class Truth:
    """Where a person's face is in a rendered frame."""

    name: str
    box: tuple[float, float, float, float]
    distance_m: float
    inside: bool
    """Whether the whole face box is inside the frame."""


@dataclass
class Scene:
    """Radiance of a room and the people in it."""

    name: str
    width: int
    height: int
    focal_px: float
    daylight: np.ndarray
    """Radiance that does not flicker (window), float32 HxWx3."""
    roomlit: np.ndarray
    """Radiance lit by the room's lamps (walls), float32 HxWx3."""
    face_light: float
    """Illuminance on faces from the room's lamps (radiance = albedo x this)."""
    lamp_gradient: float = 0.0
    """Extra face light across the room: x factor (1 + g * x_m), clipped at >= 0.2."""
    walks: list[Walk] = field(default_factory=list)
    glare: float = GLARE
    """Veiling glare of this camera's optics, fraction of the mean radiance."""

    def place(self, walk: Walk, t: float) -> tuple[float, float, float, float] | None:
        """(cx, cy, scale, distance) of a walk at time t in pixels, or None when absent."""
        pos = walk.at(t)
        if pos is None:
            return None
        x_m, d = pos
        fx, fy, fw, fh = walk.sprite.face
        face_px = self.focal_px * FACE_WIDTH_M / d
        cx = self.width / 2 + self.focal_px * x_m / d
        cy = self.height * 0.42
        return cx, cy, face_px / fw, d

    def truth(self, t: float) -> list[Truth]:
        out = []
        for walk in self.walks:
            p = self.place(walk, t)
            if p is None:
                continue
            cx, cy, s, d = p
            fw, fh = walk.sprite.face[2] * s * walk.yaw, walk.sprite.face[3] * s
            box = (cx - fw / 2, cy - fh / 2, fw, fh)
            inside = box[0] >= 0 and box[1] >= 0 and box[0] + fw <= self.width and box[1] + fh <= self.height
            out.append(Truth(walk.sprite.name, box, d, inside))
        return out

    def radiance(self, t: float, lamp: float) -> np.ndarray:
        """Radiance at time t; ``lamp`` is the lamp light averaged over the exposure (flicker)."""
        import cv2

        rad = self.daylight + self.roomlit * np.float32(lamp)
        for walk in self.walks:
            p = self.place(walk, t)
            if p is None:
                continue
            cx, cy, s, d = p
            sp = walk.sprite
            k = walk.frame(t)
            fx, fy, fw, fh = sp.face
            h, w = sp.alpha[k].shape
            sw, sh = max(1, int(w * s * walk.yaw)), max(1, int(h * s))
            x0 = int(round(cx - (fx + fw / 2) * s * walk.yaw))
            y0 = int(round(cy - (fy + fh / 2) * s))
            xa, ya, xb, yb = max(0, x0), max(0, y0), min(self.width, x0 + sw), min(self.height, y0 + sh)
            if xa >= xb or ya >= yb:
                continue
            alb = cv2.resize(sp.albedo[k], (sw, sh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
            alp = cv2.resize(sp.alpha[k], (sw, sh), interpolation=cv2.INTER_LINEAR)
            alb = alb[ya - y0 : yb - y0, xa - x0 : xb - x0]
            alp = alp[ya - y0 : yb - y0, xa - x0 : xb - x0, None]
            x_m = (cx - self.width / 2) * d / self.focal_px
            light = self.face_light * lamp * max(0.2, 1.0 + self.lamp_gradient * x_m)
            region = rad[ya:yb, xa:xb]
            region *= 1.0 - alp
            region += alp * alb * np.float32(light)
        return rad


def _room(w: int, h: int, rng: np.random.Generator, albedo: float) -> np.ndarray:
    """A plain wall with a soft gradient and a little texture (shelves, posters), as reflectance."""
    import cv2

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = albedo * (0.85 + 0.15 * (1 - yy / h))[..., None] * np.array([0.95, 1.0, 1.05], np.float32)
    for _ in range(6):
        x, y = int(rng.integers(0, w - w // 6)), int(rng.integers(0, h - h // 6))
        bw, bh = int(rng.integers(w // 20, w // 6)), int(rng.integers(h // 20, h // 6))
        wall[y : y + bh, x : x + bw] = rng.uniform(0.1, 0.8, 3).astype(np.float32)
    return cv2.GaussianBlur(wall.astype(np.float32), (3, 3), 0)


def _window(daylight: np.ndarray, roomlit: np.ndarray, x0: int, y0: int, x1: int, y1: int, sky: float) -> None:
    """Cut a window into the wall: sky and a skyline outside, dark mullions."""
    h = y1 - y0
    grad = np.linspace(1.0, 0.7, h, dtype=np.float32)[:, None, None]
    daylight[y0:y1, x0:x1] = sky * grad * np.array([1.1, 1.0, 0.9], np.float32)  # BGR: bluish sky
    sky_line = y0 + int(h * 0.7)
    daylight[sky_line:y1, x0:x1] *= 0.3  # buildings across the street
    roomlit[y0:y1, x0:x1] = 0.0
    bar = max(2, (x1 - x0) // 60)
    for xm in (x0, (x0 + x1) // 2, x1 - bar):
        daylight[y0:y1, xm : xm + bar] = 0.0
        roomlit[y0:y1, xm : xm + bar] = 0.15
    for ym in (y0, (y0 + y1) // 2, y1 - bar):
        daylight[ym : ym + bar, x0:x1] = 0.0
        roomlit[ym : ym + bar, x0:x1] = 0.15


#: Scenes: backlit (window behind the visitor), dim (evening room), mixed (window beside, lamp), plain.
SCENES = ("backlit", "dim", "mixed", "plain")


def default_walks(sprites: list[PersonSprite], duration_s: float = 12.0) -> list[Walk]:
    """The first person enters from the left, approaches to 0.8 m, sways, steps back and leaves right."""
    walks = []
    if sprites:
        walks.append(Walk(sprites[0], [(0.5, -0.9, 2.2), (2.5, -0.1, 1.6), (4.5, 0.0, 0.8), (6.0, 0.1, 0.7), (7.5, -0.1, 0.9),
                                       (9.0, 0.2, 1.8), (duration_s - 0.5, 1.3, 2.2)]))
    return walks


def build_scene(name: str, width: int = 640, height: int = 480, hfov_deg: float = 60.0, *, faces_dir: str | Path = "",
                people: list[str] | None = None, walks: list[Walk] | None = None, seed: int = 0) -> Scene:
    """A named scene; ``people``: GRID clip names to cut sprites from (default: the first clip)."""
    if name not in SCENES:
        raise ValueError(f"unknown simulated scene {name!r}; use one of {', '.join(SCENES)}")
    rng = np.random.default_rng(seed)
    focal = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
    daylight = np.zeros((height, width, 3), np.float32)
    if name == "dim":
        roomlit, face_light, gradient = _room(width, height, rng, 0.35) * 5.0, 6.0, 0.0
    elif name == "backlit":
        roomlit, face_light, gradient = _room(width, height, rng, 0.5) * 100.0, 150.0, 0.0
        _window(daylight, roomlit, int(width * 0.12), int(height * 0.05), int(width * 0.88), int(height * 0.8), 20000.0)  # sunny day outside
    elif name == "mixed":
        roomlit, face_light, gradient = _room(width, height, rng, 0.5) * 50.0, 60.0, 0.6
        _window(daylight, roomlit, 0, int(height * 0.05), int(width * 0.35), int(height * 0.75), 1500.0)
    else:
        roomlit, face_light, gradient = _room(width, height, rng, 0.5) * 60.0, 60.0, 0.0
    scene = Scene(name, width, height, focal, daylight, roomlit, face_light, gradient)
    if walks is None:
        folder = Path(faces_dir) if faces_dir else default_faces_dir()
        if folder is None or not folder.is_dir():
            raise CameraError("the simulated camera needs real faces: set camera.sim_faces_dir to shared/data/talking/grid")
        clips = sorted(folder.glob("*.mpg"))
        chosen = [folder / f"{p}.mpg" for p in people] if people else clips[:1]
        walks = default_walks([PersonSprite.from_clip(p) for p in chosen])
    scene.walks = walks
    return scene


class SimulatedCamera:
    """A camera looking at a ``Scene``: exposure, gain, sensor noise, flicker, control latency."""

    def __init__(self, scene: Scene, *, fps: float = 30.0, limits: ControlLimits | None = None, mains_hz: int = 50,
                 latency_frames: int = 2, realtime: bool = True, seed: int = 1, exposure_s: float = 0.005, gain: float = 1.0,
                 jpeg_quality: int = 80, walk_file: str | Path | None = None,
                 device_node: str | Path | None = None, cast_file: str | Path | None = None) -> None:
        self.scene = scene
        # Plugged in while this file exists, as /dev/videoN exists while a USB camera is plugged in.
        self.device_node = Path(device_node) if device_node else None
        # A scripted scene steers the first person through this file (see ``_follow_walk_file``).
        self.walk_file = Path(walk_file) if walk_file else None
        self._walk_sprite = scene.walks[0].sprite if scene.walks else None
        self._walk_stamp: int | None = None
        self._walk_checked = 0.0
        # A staged scene of several talking people (see ``_follow_cast_file``).
        self.cast_file = Path(cast_file) if cast_file else None
        self._cast_stamp: int | None = None
        self._cast_checked = 0.0
        self._sprites: dict[str, PersonSprite] = {}
        self.width, self.height, self.fps = scene.width, scene.height, fps
        self.limits = limits or ControlLimits(1e-4, 1 / fps, 1.0, 8.0)
        self.mains_hz = mains_hz
        self.latency_frames = latency_frames
        self.realtime = realtime
        self.exposure_s, self.gain = self._clamp(exposure_s, gain)
        self.auto = False
        self.plugged = True
        self.is_open = False
        self.index = 0
        self.t0 = 0.0
        self.last_truth: list[Truth] = []
        self._pending: list[tuple[int, float, float]] = []
        self._rng = np.random.default_rng(seed)
        self._noise = self._rng.standard_normal((scene.height + 64, scene.width, 3), dtype=np.float32)
        self._corrupt = 0
        self.jpeg_quality = jpeg_quality

    # --- the twin's physical events -------------------------------------------------------
    def unplug(self) -> None:
        """Pull the USB cable: reads fail until ``replug``."""
        self.plugged = False
        self.is_open = False

    def replug(self) -> None:
        self.plugged = True

    def corrupt(self, frames: int = 1) -> None:
        """The next ``frames`` frames arrive damaged (a truncated MJPEG: the lower part grey)."""
        self._corrupt += frames

    def _present(self) -> bool:
        return self.plugged and (self.device_node is None or self.device_node.exists())

    def _gone(self) -> CameraError:
        if self.plugged and self.device_node is not None:
            return CameraError(f"{self.device_node} does not exist (simulated camera unplugged)")
        return CameraError("simulated camera is unplugged")

    # --- Camera interface -------------------------------------------------------------------
    def open(self) -> None:
        if not self._present():
            raise self._gone()
        self.is_open = True
        if self.t0 == 0.0:
            self.t0 = time.monotonic()

    def close(self) -> None:
        self.is_open = False

    def _clamp(self, exposure_s: float, gain: float) -> tuple[float, float]:
        lim = self.limits
        return float(min(lim.exposure_max_s, max(lim.exposure_min_s, exposure_s))), float(min(lim.gain_max, max(lim.gain_min, gain)))

    def set_exposure(self, exposure_s: float, gain: float) -> None:
        if self.auto:
            return  # like a UVC camera: manual writes are ignored in auto mode
        e, g = self._clamp(exposure_s, gain)
        self._pending.append((self.index + self.latency_frames, e, g))

    def set_auto(self, auto: bool) -> None:
        self.auto = auto

    @property
    def time_s(self) -> float:
        """Scene time of the next frame."""
        return self.index / self.fps

    def read(self) -> Frame:
        if not self._present():
            self.is_open = False
            raise self._gone()
        if not self.is_open:
            raise CameraError("simulated camera is not open")
        while self._pending and self._pending[0][0] <= self.index:
            _, self.exposure_s, self.gain = self._pending.pop(0)
        t = self.time_s
        if self.walk_file is not None:
            self._follow_walk_file(t)
        if self.cast_file is not None:
            self._follow_cast_file(t)
        if self.realtime:
            delay = self.t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif delay < -1.0:  # fell far behind (stalled machine): skip ahead rather than rush
                self.t0 -= delay
        image = self.render(t)
        if self.jpeg_quality:
            image = self._mjpeg(image)
        if self._corrupt > 0:
            self._corrupt -= 1
            image[image.shape[0] // 3 :] = 128
        # Off the wall clock (tests, bench) frames carry the camera's own frame clock, so what
        # depends on time (a face lost for 0.7 s has left) does not depend on how fast we process.
        ts_ns = time.monotonic_ns() if self.realtime else int((self.t0 + t) * 1e9)
        frame = Frame(image, ts_ns, self.index, self.exposure_s, self.gain)
        self.index += 1
        if self.auto:
            self._camera_ae(image)
        return frame

    def _follow_walk_file(self, t: float) -> None:
        """Reload the walk file when it changed: JSON ``[[t_s, x_m, distance_m], ...]`` for the first
        person, times counted from now (the scene clock when the change is seen); ``[]``: nobody in view.
        Checked five times a second; a file that cannot be read keeps the walk as it was."""
        now = time.monotonic()
        if now - self._walk_checked < 0.2 or self._walk_sprite is None:
            return
        self._walk_checked = now
        try:
            stamp = self.walk_file.stat().st_mtime_ns  # type: ignore[union-attr]
            if stamp == self._walk_stamp:
                return
            self._walk_stamp = stamp
            keys = [(t + float(k[0]), float(k[1]), float(k[2])) for k in json.loads(self.walk_file.read_text())]  # type: ignore[union-attr]
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, IndexError) as exc:
            log.warning("walk file %s ignored: %s", self.walk_file, exc)
            return
        self.scene.walks = [Walk(self._walk_sprite, keys)] if keys else []
        log.info("walk file %s: %d keyframe(s) from scene time %.1f s", self.walk_file, len(keys), t)

    def _follow_cast_file(self, t: float) -> None:
        """Reload the cast file when it changed: JSON ``{"people": [{"clip": NAME, "walk": [[t_s, x_m, d_m], ...],
        "talk": [[start_s, clip_offset_s, dur_s], ...], "mime": [...], "yaw": 1.0, "rest_s": 0.0}]}``. Walk times
        count from when the change is seen (as in the walk file); talk and mime starts are ``time.monotonic()``
        seconds, so a line the microphone twin plays and the face saying it stay in step. ``clip``: a GRID clip
        name, ``wild/NAME`` for ``talking/wild``, or a path. A file that cannot be read keeps the cast as it was."""
        now = time.monotonic()
        if now - self._cast_checked < 0.2:
            return
        self._cast_checked = now
        try:
            stamp = self.cast_file.stat().st_mtime_ns  # type: ignore[union-attr]
            if stamp == self._cast_stamp:
                return
            self._cast_stamp = stamp
            people = json.loads(self.cast_file.read_text())["people"]  # type: ignore[union-attr]
            # scene time of a monotonic instant: frames are rendered at t0 + t on the wall clock
            walks = []
            for p in people:
                sprite = self._sprite(str(p["clip"]))
                to_scene = (lambda iv: [(float(a) - self.t0, float(b), float(c)) for a, b, c in iv]) if self.realtime else (lambda iv: [tuple(map(float, x)) for x in iv])
                walks.append(Walk(sprite, [(t + float(k[0]), float(k[1]), float(k[2])) for k in p["walk"]],
                                  talk=to_scene(p.get("talk", [])), mime=to_scene(p.get("mime", [])),
                                  rest_s=float(p.get("rest_s", 0.0)), yaw=min(1.0, max(0.3, float(p.get("yaw", 1.0))))))
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, IndexError, KeyError, CameraError) as exc:
            log.warning("cast file %s ignored: %s", self.cast_file, exc)
            return
        self.scene.walks = walks
        log.info("cast file %s: %d people from scene time %.1f s", self.cast_file, len(walks), t)

    def _sprite(self, clip: str) -> PersonSprite:
        if clip not in self._sprites:
            self._sprites[clip] = PersonSprite.from_clip(clip_path(clip), None, max_face_px=140)
        return self._sprites[clip]

    def render(self, t: float) -> np.ndarray:
        """The 8-bit BGR image at scene time t with the current exposure and gain."""
        e, g = self.exposure_s, self.gain
        lamp = 1.0
        if self.mains_hz:
            w = 2 * math.pi * 2 * self.mains_hz
            lamp = 1.0 + FLICKER_DEPTH * (math.sin(w * (t + e)) - math.sin(w * t)) / (w * e)
        self.last_truth = self.scene.truth(t)
        s = self.scene.radiance(t, lamp)
        s += np.float32(self.scene.glare * float(s[::8, ::8].mean()))
        s *= np.float32(e * SENSOR_K)
        off = int(self._rng.integers(0, 64))
        sigma = np.sqrt(s * np.float32(1 / FULL_WELL_E) + np.float32((READ_NOISE_E / FULL_WELL_E) ** 2))
        sigma *= self._noise[off : off + self.height]
        s += sigma
        s *= np.float32(g * (2**_LUT_BITS - 1))
        np.clip(s, 0, 2**_LUT_BITS - 1, out=s)
        return _GAMMA_LUT[s.astype(np.uint16)]

    def _mjpeg(self, image: np.ndarray) -> np.ndarray:
        """What comes over USB at 640x480@30: a camera-compressed JPEG (4:2:0), decoded by us.
        Compression flattens low-contrast detail, which is what dark faces are made of."""
        import cv2

        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
        return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image

    def _camera_ae(self, image: np.ndarray) -> None:
        """The camera's own auto-exposure: mean of the whole frame toward mid-grey, exposure then gain."""
        mean = float(image[::4, ::4].mean()) + 1.0
        ratio = min(4.0, max(0.25, (118.0 / mean) ** 2.2)) ** 0.5
        total = self.exposure_s * self.gain * ratio
        e = min(self.limits.exposure_max_s, total)
        self.exposure_s, self.gain = self._clamp(e, total / max(e, 1e-9))
