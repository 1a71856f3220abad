"""Speech fixtures for the hearing tests: espeak-ng MBROLA synthesis and barge-in scenes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from assistant import espeak
from hardware.microphone import RATE, load_audio
from hardware.room import leak, mix

REPLY = "good afternoon and welcome. i am the assistant of this building. i can tell you where to find people, and i can send them a message for you."
VISITOR = "hello where is the meeting room please"


def synth(text: str, path: Path, voice: str = "mb-us2", ssml: bool = False) -> np.ndarray:
    """Speak ``text`` (SSML with ``ssml``) with espeak-ng into ``path``; 16 kHz int16 mono. Skips when the voice is missing."""
    if espeak.program() is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    if not path.exists():
        out = espeak.write_wav(text, path, voice, ssml=ssml)
        if out.returncode != 0 or not path.exists() or path.stat().st_size < 1000:
            pytest.skip(f"espeak-ng voice {voice} unusable ({out.stderr.strip()[:200]}); install mbrola and mbrola-{voice[3:]} from contrib/non-free")
    return load_audio(path)


def write(path: Path, pcm: np.ndarray) -> Path:
    sf.write(str(path), pcm, RATE, subtype="PCM_16")
    return path


def with_gaps(parts: list[np.ndarray], gap_s: float = 1.0, tail_s: float = 1.5) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Concatenate utterances with silence between; returns the audio and each one's (start, end) in s."""
    gap = np.zeros(int(gap_s * RATE), np.int16)
    out, spans, pos = [], [], 0
    for p in parts:
        out += [p, gap]
        loud = np.flatnonzero(np.abs(p.astype(np.int32)) > 300)  # the speech inside the file's own silence
        spans.append(((pos + loud[0]) / RATE, (pos + loud[-1]) / RATE))
        pos += len(p) + len(gap)
    out.append(np.zeros(int(tail_s * RATE), np.int16))
    return np.concatenate(out), spans


@dataclass
class Scene:
    """A reply played into the room, optionally with a visitor talking over it."""

    mic: np.ndarray
    """What the microphone hears (int16)."""
    reply: np.ndarray
    """The reply's PCM as the voice would announce it."""
    reply_at_s: float
    """When the reply starts playing, from the start of ``mic``."""
    visitor_at_s: float | None
    """When the visitor starts speaking (None: no visitor)."""


def barge_in_scene(reply: np.ndarray, visitor: np.ndarray | None, *, reply_at_s: float = 0.5,
                   visitor_after_s: float = 2.0, echo_gain_db: float = -15.0, seed: int = 0) -> Scene:
    """The reply leaks into the mic (25 ms late, -15 dB, RT60 0.3 s); the visitor starts
    ``visitor_after_s`` into the reply, louder (nearer the shotgun mic)."""
    r0 = int(reply_at_s * RATE)
    parts = [(r0, leak(reply, gain_db=echo_gain_db, seed=seed))]
    v_at = None
    if visitor is not None:
        v_at = reply_at_s + visitor_after_s
        parts.append((int(v_at * RATE), visitor.astype(np.float32)))
    end = max(o + len(s) for o, s in parts) + 2 * RATE
    return Scene(mix(end, *parts), reply, reply_at_s, v_at)
