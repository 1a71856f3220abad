"""TTS engines behind one protocol, and the failover chain across them."""

from .base import EngineUnavailable, Synthesis, TtsEngine, TtsError
from .failover import FailoverChain, Spoken

__all__ = ["EngineUnavailable", "FailoverChain", "Spoken", "Synthesis", "TtsEngine", "TtsError"]
