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


ScreenKind = Literal["auto", "window", "web", "record", "null"]


class RendererSettings(Section):
    width: int = 1280
    """Output width in pixels (up to 1920)."""
    height: int = 720
    """Output height in pixels (up to 1080)."""
    fps: float = 30.0
    """Frames per second; frames are shown when the voice's playback clock reaches them."""
    portrait: str = ""
    """Portrait photo of the face (one frontal face); empty: the shipped public-domain portrait."""
    cache_dir: str = ""
    """Where avatar landmarks are cached per portrait; empty: ``$CACHE_DIRECTORY`` (systemd), else
    ``$XDG_CACHE_HOME/assistant/avatars``, else ``~/.cache/assistant/avatars``."""
    zoom: float = 1.4
    """1 shows the whole portrait height; larger crops towards the face."""
    letterbox: Literal["blur", "black"] = "blur"
    """Fill beside a portrait narrower than the screen."""
    driver: Literal["auto", "viseme", "energy", "lstm"] = "auto"
    """Mouth driver. ``auto``: the learned model when its file exists, else visemes when the
    utterance carries phoneme timings, else the audio energy driver."""
    lstm_model: str = ""
    """The learned driver's ONNX file; empty: ``models/lipsync/weights/lipsync.onnx`` in the code tree."""
    lead_s: float = 0.02
    """Show the mouth this much before its sound (audio-late is less noticeable than audio-early)."""
    screen: ScreenKind | tuple[ScreenKind, ...] = "auto"
    """Where the face goes: ``window`` (full-screen kiosk window), ``web`` (page on ``web_host``),
    ``record`` (MP4 with the speech), ``null`` (headless), ``auto`` (window when there is a
    display, else headless), or a list of several."""
    web_host: str = "127.0.0.1"
    """Address of the web page; keep it on loopback (the page has no authentication)."""
    web_port: int = 8780
    """Port of the web page; 0 picks a free one (logged at start-up)."""
    web_jpeg_quality: int = 80
    """JPEG quality of the web stream, 1..100."""
    record_path: str = "face.mp4"
    """MP4 file written by the ``record`` screen (relative to the working directory); overwritten."""
    mirrored_camera: bool = False
    """The camera image is already mirrored (flips which way the face looks at the visitor)."""
    gaze_timeout_s: float = 1.0
    """Stop looking at a visitor when ``vision.faces`` has said nothing for this long."""
    render_threads: int = 1
    """OpenCV threads for rendering; 1 leaves the other cores to speech and vision on a small kiosk."""
    stats_period_s: float = 1.0
    """How often ``renderer.stats`` is published."""
    seed: int = 0
    """Seed of the idle animation's randomness (blink times, eye movements); 0 means from the clock."""


class HearingSettings(Section):
    engine: Literal["pocketsphinx", "vosk"] = "pocketsphinx"
    """STT engine."""


class CameraSettings(Section):
    device: str = "sim"
    """``sim`` for the simulated camera, else a V4L2 device path or index."""


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
