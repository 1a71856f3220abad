"""Typed, versioned messages exchanged on the bus.

Import message classes from here; importing this package registers every type.
"""

from . import brain, email, face, hearing, system, vision, voice  # noqa: F401  (registers the types)
from .base import REGISTRY, MAX_FRAME_BYTES, DecodeStats, Header, Message, Received, decode, decode_header, encode, message
from .brain import Reply, TurnTrace
from .email import EmailAck, EmailFailed, EmailReceived, EmailSend, EmailSent
from .face import FaceLandmarks, RendererStats
from .hearing import Activity, Partial, Phrases, Speech, Transcript, Word
from .system import Command, Heartbeat, Probe, SystemState
from .vision import Exposure, Face, Faces, Person, Preview, Speaker
from .voice import Done, EngineUsed, Phoneme, Playback, Say, Stop, Utterance, VoiceError

__all__ = [name for name in dir() if not name.startswith("_")]
