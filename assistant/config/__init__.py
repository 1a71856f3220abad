"""Configuration: one TOML file, environment overrides, validated at start-up."""

from .loader import DEFAULT_PATH, ConfigError, load
from .schema import (
    BrainSettings,
    BusSettings,
    CameraSettings,
    Config,
    EmailSettings,
    HearingSettings,
    OpsSettings,
    RendererSettings,
    ServiceSettings,
    SupervisorSettings,
    VoiceSettings,
)

__all__ = [name for name in dir() if not name.startswith("_")]
