"""Endpointing: webrtcvad frames plus an energy gate turned into utterance start and end events.

webrtcvad alone flags low-level speech-like sound (the residue an echo canceller leaves of the
assistant's own voice) as speech, so a frame only counts as voiced when it is also some dB above
the tracked noise floor; while the assistant speaks that margin is larger (``playback_gate_db``).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

import numpy as np

RATE = 16_000
NS = 1_000_000_000


@dataclass(frozen=True)
class EndpointerSettings:
    aggressiveness: int = 2
    """webrtcvad mode 0 (least) to 3 (most aggressive about calling audio non-speech)."""
    frame_ms: int = 30
    """VAD frame length; webrtcvad takes 10, 20 or 30 ms."""
    start_ms: int = 90
    """Voiced audio needed (within one frame more than this) before an utterance starts."""
    playback_start_ms: int = 150
    """The same while the assistant's voice plays: echo residue can pass the gates for a frame or
    three, and a false start there would make the assistant interrupt itself."""
    preroll_ms: int = 300
    """Audio kept from before the start and handed to the recogniser, so first sounds are not cut."""
    hangover_ms: int = 210
    """Unvoiced time after speech before the utterance ends."""
    max_utterance_s: float = 15.0
    """An utterance longer than this is ended (and transcribed) anyway."""
    gate_db: float = 8.0
    """A voiced frame must be this far above the noise floor."""
    playback_gate_db: float = 18.0
    """The margin while the assistant's voice is playing (echo residue is quieter than a visitor)."""
    playback_erle_db: float = 12.0
    """While playing, a frame the canceller attenuated by more than this goes to the recogniser raw when
    the double-talk detector says a visitor speaks (AEC3 mutes double-talk onsets)."""

    def check(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise ValueError(f"hearing.vad_frame_ms = {self.frame_ms}: webrtcvad takes 10, 20 or 30")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f"hearing.vad_aggressiveness = {self.aggressiveness}: use 0 to 3")


@dataclass
class Edge:
    """An utterance started or ended."""

    event: str
    """``started`` or ``ended``."""
    at_ns: int
    """Time of the edge in the audio (first voiced sample, or end of the last voiced frame)."""
    audio: list[np.ndarray] = field(default_factory=list)
    """For ``started``: the pre-roll and start frames, to feed the recogniser first."""
    audio_t0_ns: int = 0
    """For ``started``: time of the first sample of ``audio``."""
    during_playback: bool = False
    """The assistant's voice was playing at the start."""
    reason: str = ""
    """For ``ended``: ``silence`` or ``max_length``."""


def energy_db(frame: np.ndarray) -> float:
    """Mean power in dB relative to one int16 step squared."""
    return 10.0 * math.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1.0)


class Endpointer:
    """Feed it fixed-size frames with their times; it says when utterances start and end."""

    def __init__(self, settings: EndpointerSettings = EndpointerSettings()) -> None:
        import webrtcvad

        settings.check()
        self.s = settings
        self.vad = webrtcvad.Vad(settings.aggressiveness)
        self.frame_len = RATE * settings.frame_ms // 1000
        self.start_frames = max(1, math.ceil(settings.start_ms / settings.frame_ms))
        self.playback_start_frames = max(self.start_frames, math.ceil(settings.playback_start_ms / settings.frame_ms))
        self.hang_frames = max(1, math.ceil(settings.hangover_ms / settings.frame_ms))
        self.max_frames = int(settings.max_utterance_s * 1000 / settings.frame_ms)
        self.preroll: collections.deque = collections.deque(maxlen=max(1, settings.preroll_ms // settings.frame_ms) + self.playback_start_frames + 1)
        self.floor_db: float | None = None
        self.in_speech = False
        self._frames = 0
        self._silent = 0
        self._last_voiced_end = 0

    def voiced(self, frame: np.ndarray, playing: bool, raw: np.ndarray | None = None, near_end: bool = False) -> bool:
        """webrtcvad's verdict on the echo-cancelled ``frame``, gated by level above the noise floor.

        While a reply plays (``playing``), webrtcvad alone would take the canceller's low-level
        residue of the assistant's voice for speech; then ``near_end`` (``DoubleTalkDetector``
        on the raw microphone frame ``raw``) must say a visitor is there too.
        """
        e = energy_db(frame)
        if self.floor_db is None:
            self.floor_db = e
        # The floor follows quiet frames down at once and rises slowly (~1.5 dB/s), so speech
        # never lifts it much; it is not updated while a reply plays (echo is not room noise).
        if e < self.floor_db:
            self.floor_db = e
        elif not playing:
            self.floor_db += 0.05 * self.s.frame_ms / 30
        if not playing:
            return e >= self.floor_db + self.s.gate_db and self.vad.is_speech(frame.tobytes(), RATE)
        if raw is None:  # no canceller: only the stricter level gate tells a visitor from the echo
            return e >= self.floor_db + self.s.playback_gate_db and self.vad.is_speech(frame.tobytes(), RATE)
        # With the canceller: the double-talk detector decides; the raw frame (AEC3 mutes a
        # visitor's first few hundred ms) must be loud and sound like speech.
        return (near_end and e >= self.floor_db + self.s.gate_db and energy_db(raw) >= self.floor_db + self.s.playback_gate_db
                and self.vad.is_speech(raw.tobytes(), RATE))

    def process(self, frame: np.ndarray, t_ns: int, playing: bool = False, raw: np.ndarray | None = None,
                near_end: bool = False) -> Edge | None:
        """One frame of ``frame_ms`` starting at ``t_ns``; returns an edge when one happens."""
        voiced = self.voiced(frame, playing, raw, near_end)
        end_ns = t_ns + len(frame) * NS // RATE
        if not self.in_speech:
            self.preroll.append((frame, t_ns, voiced))
            need = self.playback_start_frames if playing else self.start_frames
            recent = list(self.preroll)[-(need + 1):]
            if sum(v for _, _, v in recent) >= need:
                first = next(t for _, t, v in recent if v)
                self.in_speech = True
                self._frames = len(recent)
                self._silent = 0
                self._last_voiced_end = end_ns
                audio = [f for f, _, _ in self.preroll]
                audio_t0 = self.preroll[0][1]
                self.preroll.clear()
                return Edge("started", first, audio=audio, audio_t0_ns=audio_t0, during_playback=playing)
            return None
        self._frames += 1
        if voiced:
            self._silent = 0
            self._last_voiced_end = end_ns
        else:
            self._silent += 1
        if self._silent >= self.hang_frames:
            return self._end("silence")
        if self._frames >= self.max_frames:
            return self._end("max_length")
        return None

    def _end(self, reason: str) -> Edge:
        self.in_speech = False
        return Edge("ended", self._last_voiced_end, reason=reason)

    def reset(self) -> None:
        self.in_speech = False
        self.preroll.clear()
