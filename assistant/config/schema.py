"""Typed settings: one section per service. Defaults here are the built-in configuration.

Every section forbids unknown keys, so a typo in the TOML file is an error that names the key.
Add a field with a default and a docstring; document it in ``examples/assistant.toml`` too.
"""

from __future__ import annotations

from typing import Annotated, Literal

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
    services: tuple[str, ...] = ("voice",)
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


class VoiceEspeakSettings(Section):
    """espeak-ng, the offline engine (libespeak-ng through ctypes)."""

    voice: str = ""
    """Voice: empty for the language's own voice, ``mb-us2`` for an MBROLA voice (Debian packages), ``en-us+f3`` for a variant."""
    rate_wpm: int = 165
    """Speaking rate in words per minute (espeak's default 175 sounds hurried on a kiosk)."""
    pitch: int = 50
    """Base pitch, 0-100."""
    library_path: str = ""
    """libespeak-ng to load; empty: the copy bundled with ``espeakng-loader`` (Debian's for ``mb-*`` voices)."""
    data_path: str = ""
    """espeak-ng-data folder matching ``library_path``; empty: the one beside the library."""


class VoiceGttsSettings(Section):
    """Google Translate's TTS through gTTS (needs the network)."""

    tld: str = "com"
    """Google host top-level domain; picks the accent (``co.uk``, ``com.au``, ``ca``)."""
    timeout_s: float = 1.5
    """Network timeout of each HTTP request."""
    slow: bool = False
    """Google's slow reading."""


class VoiceFailoverSettings(Section):
    """The failover chain across ``voice.engines``."""

    timeout_s: float = 1.5
    """Deadline per engine except the last; past it the next engine speaks at once."""
    last_timeout_s: float = 10.0
    """Deadline of the last engine (the last resort has nothing to fall back to)."""
    backoff_s: float = 30.0
    """How long an engine that timed out or was unreachable is skipped."""


class VoiceCacheSettings(Section):
    """On-disk cache of synthesised audio (LRU, crash-safe)."""

    directory: str = ""
    """Where entries live; empty: ``$CACHE_DIRECTORY`` (systemd), else ``$XDG_CACHE_HOME/assistant/voice``, else ``~/.cache/assistant/voice``."""
    max_bytes: int = 256 * 1024 * 1024
    """Upper bound on the cache size; least recently used entries go beyond it. 0 turns the cache off."""
    prewarm: tuple[str, ...] = ("Hello!", "Hello, how can I help you?", "One moment, please.",
                                "Sorry, I did not catch that.", "Goodbye!")
    """Phrases synthesised into the cache at start-up (in the background), so they play at once."""


class VoiceLoudnessSettings(Section):
    """Loudness normalisation, so every engine sounds equally loud."""

    enabled: bool = True
    """Off: audio plays as the engine made it."""
    target_lufs: float = -20.0
    """Integrated loudness to reach (speech on a small speaker: -23 to -16 LUFS)."""
    peak_dbfs: float = -1.0
    """Sample peak ceiling; the gain is reduced so no sample goes above it."""


class VoiceSpeakerSettings(Section):
    """The output device: a real one through PyAudio, or the simulated WAV twin."""

    kind: Literal["pyaudio", "wav"] = "pyaudio"
    """``pyaudio``: a sound card; ``wav``: the twin, which records every sample with its monotonic time."""
    device: str | int = ""
    """PyAudio output device: a name (exact, else a substring, e.g. ``pulse``) or an index; empty: the default output."""
    sample_rate: int = 48000
    """Samples per second the device plays; utterances are resampled to it."""
    block_frames: int = 480
    """Samples per block pulled from the player; smaller is a finer clock and more wake-ups."""
    reopen_after_s: float = 0.5
    """PyAudio: reopen the device when no audio callback came for this long (unplugged, sound server restarted)."""
    wav_path: str = ""
    """WAV twin: file to record to (its block times go beside it as ``.times.npy``); empty: ``assistant-voice.wav`` in the temp folder."""
    wav_latency_s: float = 0.010
    """WAV twin: the audio the simulated device holds, like a sound card's buffer."""


class VoiceSettings(Section):
    """The voice service: text to speech, the speaker and the playback clock."""

    engines: Annotated[tuple[Literal["gtts", "espeak-ng"], ...], msgspec.Meta(min_length=1)] = ("gtts", "espeak-ng")
    """TTS failover chain, first choice first."""
    lang: str = "en"
    """Default language when a ``voice.say`` names none."""
    lead_ms: float = 30.0
    """How far ahead of now a reply's first sentence is scheduled (``play_at``): the renderer's time to
    prepare. It adds to the first sound, so it stays small; later sentences are announced sooner."""
    announce_ahead_s: float = 1.0
    """Later sentences are announced and scheduled once the audio before them ends within this time."""
    sentence_gap_ms: float = 200.0
    """Pause between the sentences of a reply (espeak-ng leaves only ~20 ms of silence around each)."""
    playback_period_s: float = 0.05
    """Period of ``voice.playback`` while something plays."""
    max_chars: int = 250
    """Longest piece of a reply synthesised at once; longer sentences are cut at clauses, then words."""
    synth_ahead: int = 2
    """Pieces synthesised ahead of the one playing."""
    max_text_chars: int = 20000
    """Longer ``voice.say`` texts are refused with ``voice.error``."""
    espeak: VoiceEspeakSettings = VoiceEspeakSettings()
    """espeak-ng engine settings."""
    gtts: VoiceGttsSettings = VoiceGttsSettings()
    """gTTS engine settings (the language is ``lang``)."""
    failover: VoiceFailoverSettings = VoiceFailoverSettings()
    """Deadlines and back-off of the failover chain."""
    cache: VoiceCacheSettings = VoiceCacheSettings()
    """The audio cache and the phrases prewarmed into it."""
    loudness: VoiceLoudnessSettings = VoiceLoudnessSettings()
    """Loudness normalisation across engines."""
    speaker: VoiceSpeakerSettings = VoiceSpeakerSettings()
    """The output device."""


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
