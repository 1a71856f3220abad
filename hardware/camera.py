"""The web camera: a small interface, the V4L2 camera through OpenCV, and (in ``camera_sim``) its
simulated physical twin.

Both speak physical units to the auto-exposure loop: exposure time in seconds and gain as a linear
factor (1.0 = no gain). Each camera converts to its own control units. For V4L2:

- exposure: UVC cameras take ``exposure_time_absolute`` (kernel >= 5.x name) or
  ``exposure_absolute`` (older kernels) in units of 100 us; a few non-UVC drivers only offer
  ``exposure`` in driver units. We resolve controls by their stable V4L2 ids first and by the
  names ``v4l2-ctl`` prints second, and take the unit from config (``exposure_unit_s``).
- gain: ``gain`` (or ``analogue_gain``) in an arbitrary range; we map it linearly onto
  ``1 .. gain_max_factor`` (most UVC sensors are close to linear over their range).
- writes to manual exposure and gain are ignored while ``auto_exposure`` (a menu: 1 manual,
  3 aperture priority) is in an auto mode, so we switch it to manual first and read back.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import os
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

log = logging.getLogger(__name__)


class CameraError(Exception):
    """The camera cannot be opened or stopped delivering frames (unplugged, busy, broken)."""


@dataclass
class Frame:
    """One captured frame."""

    image: np.ndarray
    """BGR uint8, height x width x 3."""
    ts_ns: int
    """Capture time, ``time.monotonic_ns()``."""
    index: int
    """Frame counter since the camera was opened."""
    exposure_s: float = 0.0
    """Exposure in effect for this frame when the camera reports it (simulated camera), else 0."""
    gain: float = 0.0
    """Gain factor in effect for this frame when known, else 0."""


@dataclass(frozen=True)
class ControlLimits:
    """What a camera's exposure and gain can do, in physical units."""

    exposure_min_s: float
    exposure_max_s: float
    gain_min: float = 1.0
    gain_max: float = 8.0


class Camera(Protocol):
    """What the camera service needs from a camera."""

    width: int
    height: int
    fps: float
    limits: ControlLimits

    def open(self) -> None: ...
    def read(self) -> Frame: ...
    def set_exposure(self, exposure_s: float, gain: float) -> None: ...
    def set_auto(self, auto: bool) -> None: ...
    def close(self) -> None: ...


# --- V4L2 controls through ioctl --------------------------------------------------------------
def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("V") << 8) | nr


class _QueryCtrl(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint32), ("type", ctypes.c_uint32), ("name", ctypes.c_char * 32),
        ("minimum", ctypes.c_int32), ("maximum", ctypes.c_int32), ("step", ctypes.c_int32),
        ("default_value", ctypes.c_int32), ("flags", ctypes.c_uint32), ("reserved", ctypes.c_uint32 * 2),
    ]


class _Control(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint32), ("value", ctypes.c_int32)]


VIDIOC_QUERYCTRL = _iowr(36, ctypes.sizeof(_QueryCtrl))
VIDIOC_G_CTRL = _iowr(27, ctypes.sizeof(_Control))
VIDIOC_S_CTRL = _iowr(28, ctypes.sizeof(_Control))
_FLAG_NEXT_CTRL = 0x80000000
_FLAG_DISABLED = 0x0001
_FLAG_INACTIVE = 0x0010

#: Control roles -> (V4L2 ids in order of preference, names as v4l2-ctl prints them).
ROLES: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "auto_exposure": ((0x009A0901,), ("auto_exposure", "exposure_auto")),
    "exposure": ((0x009A0902, 0x00980911), ("exposure_time_absolute", "exposure_absolute", "exposure")),
    "exposure_priority": ((0x009A0903,), ("exposure_dynamic_framerate", "exposure_auto_priority")),
    "gain": ((0x00980913, 0x009E0903), ("gain", "analogue_gain")),
    "autogain": ((0x00980912,), ("gain_automatic", "autogain")),
    "power_line": ((0x00980918,), ("power_line_frequency",)),
    "backlight": ((0x0098091C,), ("backlight_compensation",)),
}
AUTO_EXPOSURE_MANUAL = 1
AUTO_EXPOSURE_APERTURE_PRIORITY = 3


def control_name(raw: bytes) -> str:
    """The name ``v4l2-ctl`` prints for a control: 'Exposure Time, Absolute' -> 'exposure_time_absolute'."""
    text = raw.split(b"\0", 1)[0].decode("ascii", "replace").lower()
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


@dataclass
class Control:
    id: int
    name: str
    minimum: int
    maximum: int
    step: int
    default: int
    flags: int

    def clamp(self, value: float) -> int:
        step = max(1, self.step)
        v = int(round((value - self.minimum) / step)) * step + self.minimum
        return int(min(self.maximum, max(self.minimum, v)))


class V4L2Controls:
    """Controls of one ``/dev/videoN`` node, resolved by role. ``ioctl`` is injectable for tests."""

    def __init__(self, fd: int, ioctl=fcntl.ioctl) -> None:
        self.fd = fd
        self._ioctl = ioctl
        self.by_id: dict[int, Control] = {}
        self.by_name: dict[str, Control] = {}
        self._enumerate()
        self.roles = {role: self._resolve(ids, names) for role, (ids, names) in ROLES.items()}

    def _enumerate(self) -> None:
        q = _QueryCtrl(id=_FLAG_NEXT_CTRL)
        for _ in range(512):  # a camera has a few dozen; bound the loop against a looping driver
            try:
                self._ioctl(self.fd, VIDIOC_QUERYCTRL, q)
            except OSError:
                break
            if not q.flags & _FLAG_DISABLED:
                c = Control(q.id, control_name(bytes(q.name)), q.minimum, q.maximum, q.step, q.default_value, q.flags)
                self.by_id[c.id] = c
                self.by_name.setdefault(c.name, c)
            q = _QueryCtrl(id=q.id | _FLAG_NEXT_CTRL)

    def _resolve(self, ids: tuple[int, ...], names: tuple[str, ...]) -> Control | None:
        for cid in ids:
            if cid in self.by_id:
                return self.by_id[cid]
        for name in names:
            if name in self.by_name:
                return self.by_name[name]
        return None

    def get(self, control: Control) -> int:
        c = _Control(id=control.id)
        self._ioctl(self.fd, VIDIOC_G_CTRL, c)
        return int(c.value)

    def set(self, control: Control, value: float) -> int:
        """Write a control and return what the camera reads back."""
        c = _Control(id=control.id, value=control.clamp(value))
        self._ioctl(self.fd, VIDIOC_S_CTRL, c)
        return self.get(control)

    def set_role(self, role: str, value: float) -> int | None:
        control = self.roles.get(role)
        if control is None:
            return None
        try:
            return self.set(control, value)
        except OSError as exc:
            log.warning("camera ignored %s=%s: %s", control.name, value, exc)
            return None

    def set_named(self, name: str, value: int) -> None:
        control = self.by_name.get(name)
        if control is None:
            raise CameraError(f"camera has no control {name!r}; it has: {', '.join(sorted(self.by_name))}")
        self.set(control, value)


@dataclass
class V4L2Camera:
    """A UVC/V4L2 web camera through OpenCV, with exposure and gain under our control."""

    device: str = "/dev/video0"
    width: int = 640
    height: int = 480
    fps: float = 30.0
    fourcc: str = "MJPG"
    exposure_unit_s: float = 1e-4
    gain_max_factor: float = 8.0
    mains_hz: int = 50
    extra_controls: dict[str, int] = field(default_factory=dict)
    limits: ControlLimits = field(default_factory=lambda: ControlLimits(1e-4, 1 / 30))
    _cap: object = None
    _controls: V4L2Controls | None = None
    _fd: int = -1
    _index: int = 0

    @property
    def path(self) -> str:
        return f"/dev/video{self.device}" if self.device.isdigit() else self.device

    def open(self) -> None:
        import cv2

        if not os.path.exists(self.path):
            raise CameraError(f"{self.path} does not exist (camera unplugged?)")
        cap = cv2.VideoCapture(self.path, cv2.CAP_V4L2)
        if not cap.isOpened():
            raise CameraError(f"cannot open {self.path} (busy, or not a capture device)")
        cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        cap.set(cv2.CAP_PROP_FPS, self.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a queue of old ones
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), cap.get(cv2.CAP_PROP_FPS))
        if got[:2] != (self.width, self.height):
            log.warning("%s gives %dx%d, not the configured %dx%d", self.path, got[0], got[1], self.width, self.height)
            self.width, self.height = got[:2]
        self._cap = cap
        self._index = 0
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)
            self._controls = V4L2Controls(self._fd)
        except OSError as exc:
            log.warning("no V4L2 controls on %s (%s); exposure stays with the camera", self.path, exc)
            self._controls = None
        self._setup_controls()

    def _setup_controls(self) -> None:
        c = self._controls
        if c is None:
            return
        exp = c.roles["exposure"]
        if exp is not None:
            # The configured limits, narrowed to what this camera can do at this frame rate.
            lo = max(max(exp.minimum, 1) * self.exposure_unit_s, self.limits.exposure_min_s)
            hi = min(exp.maximum * self.exposure_unit_s, 1.0 / self.fps, self.limits.exposure_max_s)
            gmax = min(self.limits.gain_max, self.gain_max_factor) if c.roles["gain"] else 1.0
            self.limits = ControlLimits(lo, max(lo, hi), min(self.limits.gain_min, gmax), gmax)
        c.set_role("exposure_priority", 0)  # keep the frame rate: no auto-lengthened exposures
        c.set_role("backlight", 0)  # the camera's own backlight trick fights our metering
        if self.mains_hz in (50, 60):
            c.set_role("power_line", 1 if self.mains_hz == 50 else 2)
        for name, value in self.extra_controls.items():
            try:
                c.set_named(name, value)
            except (CameraError, OSError) as exc:
                log.warning("control %s=%s not applied: %s", name, value, exc)

    def set_auto(self, auto: bool) -> None:
        """Hand exposure to the camera (``auto``) or take it (manual); manual writes need the latter."""
        if self._controls is None:
            return
        want = AUTO_EXPOSURE_APERTURE_PRIORITY if auto else AUTO_EXPOSURE_MANUAL
        got = self._controls.set_role("auto_exposure", want)
        if got is not None and got != want:
            log.warning("%s keeps auto_exposure=%s (asked %s)", self.path, got, want)
        self._controls.set_role("autogain", 1 if auto else 0)

    def set_exposure(self, exposure_s: float, gain: float) -> None:
        c = self._controls
        if c is None:
            return
        exp = c.roles["exposure"]
        if exp is not None:
            c.set_role("exposure", exposure_s / self.exposure_unit_s)
        g = c.roles["gain"]
        if g is not None and self.gain_max_factor > 1:
            frac = (gain - 1.0) / (self.gain_max_factor - 1.0)
            c.set_role("gain", g.minimum + frac * (g.maximum - g.minimum))

    def read(self) -> Frame:
        if self._cap is None:
            raise CameraError(f"{self.path} is not open")
        ok, image = self._cap.read()  # type: ignore[attr-defined]
        if not ok or image is None:
            raise CameraError(f"{self.path} stopped delivering frames (unplugged?)")
        self._index += 1
        return Frame(image, time.monotonic_ns(), self._index)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()  # type: ignore[attr-defined]
            self._cap = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._controls = None


def open_camera(settings, *, realtime: bool = True) -> Camera:
    """The camera the config names: ``sim`` (or ``sim:SCENE``) or a V4L2 device. Not opened yet."""
    limits = ControlLimits(settings.exposure_min_s, settings.exposure_max_s, settings.gain_min, settings.gain_max)
    if settings.device == "sim" or settings.device.startswith("sim:"):
        from .camera_sim import SimulatedCamera, build_scene

        scene_name = settings.device.partition(":")[2] or settings.sim_scene
        scene = build_scene(scene_name, settings.width, settings.height, settings.hfov_deg, faces_dir=settings.sim_faces_dir)
        return SimulatedCamera(scene, fps=settings.fps, limits=limits, mains_hz=settings.mains_hz,
                               latency_frames=settings.sim_latency_frames, realtime=realtime,
                               walk_file=settings.sim_walk_file or None, device_node=settings.sim_device_node or None,
                               cast_file=settings.sim_cast_file or None)
    return V4L2Camera(
        device=settings.device, width=settings.width, height=settings.height, fps=settings.fps,
        fourcc=settings.fourcc, exposure_unit_s=settings.exposure_unit_s, gain_max_factor=settings.gain_max,
        mains_hz=settings.mains_hz, extra_controls=dict(settings.v4l2_controls), limits=limits,
    )
