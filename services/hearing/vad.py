"""Endpointing: webrtcvad frames plus an energy gate turned into utterance start and end events.

webrtcvad alone flags low-level speech-like sound (the residue an echo canceller leaves of the
assistant's own voice) as speech, so a frame only counts as voiced when it is also some dB above
the tracked noise floor; while the assistant speaks that margin is larger (``playback_gate_db``).

The endpointer takes the ``hearing`` config section itself (``HearingSettings``: the ``vad_*``,
``turn_*_silence_ms``, ``max_utterance_s`` and gate keys); the schema checks their ranges
(``vad_frame_ms`` is 10, 20 or 30, ``vad_aggressiveness`` 0 to 3).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from assistant.config import HearingSettings

RATE = 16_000
NS = 1_000_000_000


@dataclass
class Edge:
    """An utterance started or ended."""

    event: str
    """``started``, ``pause`` (``vad_speculate_ms`` of silence in an utterance), ``resumed`` (speech after a pause) or ``ended``."""
    at_ns: int
    """Time of the edge in the audio (first voiced sample, or end of the last voiced frame)."""
    audio: list[np.ndarray] = field(default_factory=list)
    """For ``started``: the pre-roll and start frames, to feed the recogniser first."""
    audio_t0_ns: int = 0
    """For ``started``: time of the first sample of ``audio``."""
    during_playback: bool = False
    """The assistant's voice was playing at the start."""
    reason: str = ""
    """For ``ended``: ``silence`` (a finished turn after ``vad_hangover_ms``), ``doubt_pause`` (a maybe finished one after
    ``turn_doubt_silence_ms``), ``long_pause`` (an unfinished one after ``turn_max_silence_ms``) or ``max_length``."""


def energy_db(frame: np.ndarray) -> float:
    """Mean power in dB relative to one int16 step squared."""
    return 10.0 * math.log10(float(np.mean(frame.astype(np.float64) ** 2)) + 1.0)


class SileroVad:
    """Silero VAD v5 (the ONNX file in the pipecat-ai wheel) on onnxruntime, with webrtcvad's
    ``is_speech(bytes, rate)`` call: it scores 512-sample windows (with 64 samples of context) and
    a frame is speech when the latest window's probability is over ``threshold``."""

    def __init__(self, threshold: float = 0.5) -> None:
        import onnxruntime as ort

        from .turn import pipecat_file

        path = pipecat_file("audio/vad/data/silero_vad.onnx", "the silero ONNX file (hearing.vad_engine = 'silero')",
                            "pip install --no-deps pipecat-ai==1.14.0 (it ships in that wheel); or use vad_engine = 'webrtc'")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        self.threshold = threshold
        self.prob = 0.0
        self.reset()

    def reset(self) -> None:
        self._state = np.zeros((2, 1, 128), np.float32)
        self._context = np.zeros((1, 64), np.float32)
        self._pending = np.zeros(0, np.float32)
        self._windows = 0

    def is_speech(self, frame: bytes, rate: int = RATE) -> bool:
        self._pending = np.concatenate([self._pending, np.frombuffer(frame, np.int16).astype(np.float32) / 32768.0])
        while len(self._pending) >= 512:
            x = np.concatenate([self._context, self._pending[None, :512]], axis=1)
            self._pending = self._pending[512:]
            out, self._state = self.session.run(None, {"input": x, "state": self._state, "sr": np.array(RATE, np.int64)})
            self._context = x[:, -64:]
            self.prob = float(np.asarray(out).ravel()[0])
            self._windows += 1
            if self._windows >= 60 and self.prob < 0.1:  # ~2 s: a quiet moment clears the recurrent state (as pipecat does)
                self._state[:] = 0
                self._windows = 0
        return self.prob >= self.threshold


class Endpointer:
    """Feed it fixed-size frames with their times; it says when utterances start and end (``settings``: the ``hearing`` section)."""

    def __init__(self, settings: HearingSettings = HearingSettings()) -> None:
        self.s = s = settings
        if s.vad_engine == "silero":
            self.vad = SileroVad(s.silero_threshold)
        elif s.vad_engine == "webrtc":
            import webrtcvad

            self.vad = webrtcvad.Vad(s.vad_aggressiveness)
        else:
            raise ValueError(f"hearing.vad_engine = {s.vad_engine!r}: use webrtc or silero")
        frame_ms = s.vad_frame_ms
        self.frame_len = RATE * frame_ms // 1000
        self.start_frames = max(1, math.ceil(s.vad_start_ms / frame_ms))
        self.playback_start_frames = max(self.start_frames, math.ceil(s.vad_playback_start_ms / frame_ms))
        self.hang_frames = max(1, math.ceil(s.vad_hangover_ms / frame_ms))
        self.spec_frames = max(1, min(self.hang_frames, math.ceil(s.vad_speculate_ms / frame_ms)))
        self.max_hang_frames = max(self.hang_frames, math.ceil(s.turn_max_silence_ms / frame_ms))
        self.doubt_frames = min(self.max_hang_frames, max(self.hang_frames, math.ceil(s.turn_doubt_silence_ms / frame_ms)))
        self.end_of_turn: Callable[[], bool | str | None] | None = None
        """Asked once per pause when ``vad_hangover_ms`` of silence has passed: True or ``"finished"`` ends the turn now,
        ``"doubtful"`` after ``turn_doubt_silence_ms``, False or ``"unfinished"`` after ``turn_max_silence_ms``;
        None: not decided yet (asked again on the next frame)."""
        self._end_frames = self.max_hang_frames
        self._paused = False
        self._asked = False
        self.max_frames = int(s.max_utterance_s * 1000 / frame_ms)
        self.preroll: collections.deque = collections.deque(maxlen=max(1, s.vad_preroll_ms // frame_ms) + self.playback_start_frames + 1)
        self.floor_db: float | None = None
        self.in_speech = False
        self.last_voiced = False
        """The verdict on the last frame (published as ``hearing.activity``)."""
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
            self.floor_db += 0.05 * self.s.vad_frame_ms / 30
        # The classifier sees every frame (silero carries state from one window to the next).
        if not playing:
            return self.vad.is_speech(frame.tobytes(), RATE) and e >= self.floor_db + self.s.vad_gate_db
        if raw is None:  # no canceller: only the stricter level gate tells a visitor from the echo
            return self.vad.is_speech(frame.tobytes(), RATE) and e >= self.floor_db + self.s.playback_gate_db
        # With the canceller: the double-talk detector decides; the raw frame (AEC3 mutes a
        # visitor's first few hundred ms) must be loud and sound like speech.
        speech = self.vad.is_speech(raw.tobytes(), RATE)
        return near_end and e >= self.floor_db + self.s.vad_gate_db and energy_db(raw) >= self.floor_db + self.s.playback_gate_db and speech

    def process(self, frame: np.ndarray, t_ns: int, playing: bool = False, raw: np.ndarray | None = None,
                near_end: bool = False) -> Edge | None:
        """One frame of ``frame_ms`` starting at ``t_ns``; returns an edge when one happens."""
        voiced = self.last_voiced = self.voiced(frame, playing, raw, near_end)
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
        if self._frames >= self.max_frames:
            return self._end("max_length")
        if voiced:
            self._silent = 0
            self._last_voiced_end = end_ns
            self._asked = False
            if self._paused:
                self._paused = False
                return Edge("resumed", t_ns)
            return None
        self._silent += 1
        if self._silent >= self.hang_frames:
            if self.end_of_turn is None:
                return self._end("silence")
            if self._asked and self._silent >= self._end_frames:
                return self._end("doubt_pause" if self._end_frames < self.max_hang_frames else "long_pause")
            if self._silent >= self.max_hang_frames:
                return self._end("silence")  # never decided: the silence alone ended it
            if not self._asked:
                state = self.end_of_turn()
                if state is not None:  # None: not decided yet (the final pass still decoding), ask again next frame
                    self._asked = True
                    if state is True or state == "finished":
                        return self._end("silence")
                    self._end_frames = self.doubt_frames if state == "doubtful" else self.max_hang_frames
                    if self._silent >= self._end_frames:
                        return self._end("doubt_pause" if state == "doubtful" else "long_pause")
        if self._silent >= self.spec_frames and not self._paused:
            self._paused = True
            return Edge("pause", self._last_voiced_end)
        return None

    def _end(self, reason: str) -> Edge:
        self.in_speech = False
        self._paused = self._asked = False
        return Edge("ended", self._last_voiced_end, reason=reason)

    @property
    def silent_ms(self) -> int:
        """Unvoiced time since the last voiced frame of the current utterance."""
        return self._silent * self.s.vad_frame_ms if self.in_speech else 0

    def reset(self) -> None:
        self.in_speech = False
        self._paused = self._asked = False
        self.preroll.clear()
