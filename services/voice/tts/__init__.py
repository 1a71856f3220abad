"""TTS engines behind one protocol, and the failover chain across them."""

from .base import EngineUnavailable, Synthesis, TtsEngine, TtsError
from .failover import FailoverChain, FailoverSettings, Spoken

__all__ = ["EngineUnavailable", "FailoverChain", "FailoverSettings", "Spoken", "Synthesis", "TtsEngine", "TtsError"]
