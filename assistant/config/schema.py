"""Typed settings: one section per service. Defaults here are the built-in configuration.

Every section forbids unknown keys, so a typo in the TOML file is an error that names the key.
Add a field with a default and a docstring; document it in ``examples/assistant.toml`` too.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """Base of every config section."""


class BusSettings(Section):
    transport: Literal["ipc", "tcp"] = "ipc"
    """``ipc``: unix sockets in ``runtime_dir``; ``tcp``: loopback ports ``pub_port`` / ``sub_port``."""
    runtime_dir: str = ""
    """Where the ipc sockets live; empty: ``$RUNTIME_DIRECTORY`` (systemd), else ``$XDG_RUNTIME_DIR/assistant``, else ``/tmp/assistant-<uid>``."""
    host: str = "127.0.0.1"
    """Address for the tcp transport. Keep it on loopback: the bus has no authentication."""
    pub_port: int = 5601
    """tcp port publishers connect to (the broker's XSUB)."""
    sub_port: int = 5602
    """tcp port subscribers connect to (the broker's XPUB)."""
    hwm: int = 200_000
    """High-water mark in messages per socket; sized so bursts of 10,000 small messages are never dropped."""
    connect_timeout_s: float = 5.0
    """How long a service waits for the broker at start-up before it reports failure."""


class SupervisorSettings(Section):
    services: tuple[str, ...] = ()
    """Services ``assistant up`` starts (the bus is always started first) and ``status`` expects."""
    restart_backoff_s: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)
    """Delays before restarting a crashed child; the last repeats. Reset after 60 s of uptime."""
    stop_timeout_s: float = 2.0
    """SIGTERM grace period before SIGKILL."""


class ServiceSettings(Section):
    heartbeat_s: float = 1.0
    """Heartbeat period."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Log level for every service."""


class VoiceSettings(Section):
    engines: tuple[str, ...] = ("gtts", "espeak-ng")
    """TTS failover chain, first choice first."""
    lang: str = "en"
    """Default language."""


class RendererSettings(Section):
    width: int = 1280
    """Output width in pixels (up to 1920)."""
    height: int = 720
    """Output height in pixels (up to 1080)."""
    fps: float = 30.0
    """Frames per second."""


class HearingSettings(Section):
    engine: Literal["pocketsphinx", "vosk"] = "pocketsphinx"
    """STT engine."""


class CameraSettings(Section):
    device: str = "sim"
    """``sim`` (or ``sim:SCENE``) for the simulated camera, else a V4L2 device path (``/dev/video0``) or index."""
    width: int = 640
    """Capture width in pixels."""
    height: int = 480
    """Capture height in pixels."""
    fps: float = 30.0
    """Capture frame rate; also bounds the longest exposure (1 / fps)."""
    fourcc: str = "MJPG"
    """V4L2 pixel format; MJPG gives 640x480 at 30 fps over USB 2 where YUYV may not."""
    hfov_deg: float = 60.0
    """Horizontal field of view of the lens, for the distance estimate (typical webcam: 55-78)."""
    exposure_unit_s: float = 0.0001
    """Seconds per unit of the V4L2 exposure control (UVC ``exposure_time_absolute``: 100 us)."""
    exposure_min_s: float = 0.0001
    """Shortest exposure the auto-exposure may use."""
    exposure_max_s: float = 0.0333
    """Longest exposure; keep <= 1 / fps or the frame rate drops."""
    gain_min: float = 1.0
    """Lowest gain factor."""
    gain_max: float = 8.0
    """Highest gain factor; the V4L2 gain range is mapped linearly onto gain_min .. gain_max."""
    mains_hz: int = 50
    """Mains frequency for flicker-free exposure steps (50 or 60); 0 disables flicker steps."""
    v4l2_controls: dict[str, int] = {}
    """Other V4L2 controls to set at open, by ``v4l2-ctl`` name, e.g. ``{white_balance_automatic = 1}``."""
    ae_mode: Literal["face", "global", "camera", "manual"] = "face"
    """``face``: face-priority metering (centre-weighted without a face); ``global``: mean of the frame; ``camera``: the camera's own auto-exposure; ``manual``: fixed ``manual_exposure_s`` / ``manual_gain``."""
    manual_exposure_s: float = 0.01
    """Exposure in ``manual`` mode and the starting point of the loop."""
    manual_gain: float = 1.0
    """Gain in ``manual`` mode and the starting point of the loop."""
    target_luminance: float = 110.0
    """Target mean luma (0..255) of the metered face region."""
    target_band: float = 20.0
    """The face is well exposed within target +- this; the loop corrects when it leaves +- 0.6 x band and stops inside +- 0.25 x band."""
    latency_frames: int = 2
    """Frames before a written exposure shows in the image; the loop waits this long between corrections."""
    detect_every: int = 5
    """Full-frame face search every N frames; tracked faces are searched near their last box every frame."""
    detect_width: int = 480
    """Width of the downscaled image the full-frame search runs on."""
    min_face_px: int = 32
    """Smallest face found by the full-frame search, in capture pixels (~2.5 m at 640 px, 60 deg)."""
    face_width_m: float = 0.15
    """Width of a detector face box on an adult, for distance = focal x width / box width."""
    engage_m: float = 1.0
    """A visitor closer than this becomes engaged."""
    release_m: float = 1.5
    """An engaged visitor farther than this is released (hysteresis against jitter)."""
    max_engaged: int = 1
    """At most this many visitors are engaged at once (the closest ones)."""
    lost_after_s: float = 0.7
    """A face not seen for this long has left."""
    gallery_dir: str = "/var/lib/assistant/faces"
    """Where enrolled face embeddings live, one ``NAME.npz`` per person."""
    match_threshold: float = 0.45
    """Largest embedding distance accepted as the same person (measured: see docs/camera.md)."""
    recognise_every_s: float = 0.5
    """How often an unidentified track is sent to recognition (each takes ~50-120 ms on one core)."""
    faces_hz: float = 15.0
    """Rate of ``vision.faces`` messages (>= 10)."""
    preview_every_s: float = 1.0
    """Period of the JPEG preview for the status page; 0 disables it."""
    preview_width: int = 320
    """Width of the preview image."""
    sim_scene: Literal["backlit", "dim", "mixed", "plain"] = "backlit"
    """Scene of the simulated camera."""
    sim_faces_dir: str = ""
    """Folder of GRID clips the simulated camera cuts people from; empty: ../shared/data/talking/grid."""
    sim_latency_frames: int = 2
    """Control latency of the simulated camera, in frames."""


class EmailSettings(Section):
    enabled: bool = False
    """Whether the email service connects to a mailbox."""


class BrainSettings(Section):
    name: str = "Ada"
    """The assistant's name."""


class Config(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """The whole configuration file."""

    bus: BusSettings = BusSettings()
    supervisor: SupervisorSettings = SupervisorSettings()
    service: ServiceSettings = ServiceSettings()
    voice: VoiceSettings = VoiceSettings()
    renderer: RendererSettings = RendererSettings()
    hearing: HearingSettings = HearingSettings()
    camera: CameraSettings = CameraSettings()
    email: EmailSettings = EmailSettings()
    brain: BrainSettings = BrainSettings()
