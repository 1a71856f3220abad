"""Self-hearing: the voice's played PCM as echo reference for WebRTC's AEC3 echo canceller.

``voice.utterance`` announces each reply sentence with its PCM and the monotonic time its first
sample leaves the speaker. ``PlaybackReference`` keeps those on one timeline, so for any stretch
of captured audio it can hand the canceller exactly what the speaker was playing then, and say
whether the assistant is (or just was) speaking, for the endpointer's playback gate.

The canceller is ``pywebrtc_audio.EchoCanceller`` (WebRTC AEC3 with its delay estimator: the
speaker-to-mic delay need not be known).
"""

from __future__ import annotations

import collections
import threading

import numpy as np

RATE = 16_000
NS = 1_000_000_000


class PlaybackReference:
    """What the speaker plays, on the monotonic timeline; thread-safe."""

    def __init__(self, tail_ms: int = 300, keep_s: float = 60.0) -> None:
        self.tail_ns = tail_ms * 1_000_000
        self.keep_ns = int(keep_s * NS)
        self._segments: list[tuple[int, int, np.ndarray, str]] = []  # (start_ns, end_ns, pcm16k, id)
        self._lock = threading.Lock()

    def add(self, utterance_id: str, pcm: bytes, sample_rate: int, play_at_ns: int) -> np.ndarray:
        """Add a played utterance (int16 mono PCM at ``sample_rate``); returns it at 16 kHz."""
        from hardware.microphone import to_int16_mono

        if sample_rate < 4000 or sample_rate > 192_000:
            raise ValueError(f"voice.utterance {utterance_id!r}: sample_rate {sample_rate} is not a plausible audio rate")
        if len(pcm) % 2:
            raise ValueError(f"voice.utterance {utterance_id!r}: odd PCM byte count {len(pcm)}; expected int16 samples")
        x = to_int16_mono(np.frombuffer(pcm, dtype="<i2"), sample_rate)
        end = play_at_ns + len(x) * NS // RATE
        with self._lock:
            self._segments.append((play_at_ns, end, x, utterance_id))
            self._segments = [s for s in self._segments if s[1] > play_at_ns - self.keep_ns]
        return x

    def cut(self, at_ns: int, utterance_id: str | None = None) -> None:
        """Playback stopped at ``at_ns`` (``voice.stop``, or one utterance interrupted)."""
        with self._lock:
            out = []
            for start, end, x, uid in self._segments:
                if (utterance_id is None or uid == utterance_id) and end > at_ns:
                    if start >= at_ns:
                        continue
                    n = (at_ns - start) * RATE // NS
                    x, end = x[:n], at_ns
                out.append((start, end, x, uid))
            self._segments = out

    def window(self, t0_ns: int, n: int) -> tuple[np.ndarray, bool]:
        """The ``n`` reference samples playing from ``t0_ns``, and whether playback is active
        (playing now, or ended less than ``tail_ms`` ago: the room still rings)."""
        out = np.zeros(n, dtype=np.int16)
        t1 = t0_ns + n * NS // RATE
        active = False
        with self._lock:
            for start, end, x, _ in self._segments:
                if end + self.tail_ns > t0_ns and start < t1:
                    active = True
                if end <= t0_ns or start >= t1:
                    continue
                # Sample offsets of the overlap, rounded the same way on both sides.
                a = (max(start, t0_ns) - start) * RATE // NS
                o = (max(start, t0_ns) - t0_ns) * RATE // NS
                k = min(len(x) - a, n - o)
                if k > 0:
                    seg = out[o:o + k].astype(np.int32) + x[a:a + k]
                    out[o:o + k] = np.clip(seg, -32768, 32767)
        return out, active


class EchoFilter:
    """AEC3 over 10 ms frames: ``process(mic, ref)`` returns the mic with the echo removed."""

    frame = RATE // 100

    def __init__(self, delay_hint_ms: int = 0) -> None:
        try:
            from pywebrtc_audio import EchoCanceller
        except ImportError:
            raise RuntimeError("echo cancellation needs pywebrtc-audio; pip install 'embodied-assistant[hearing]' or set hearing.aec = false") from None
        self._aec = EchoCanceller(sample_rate=RATE, num_channels=1, stream_delay_ms=delay_hint_ms)

    def process(self, mic: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return self._aec.process(mic, ref)


class DoubleTalkDetector:
    """Is someone besides the assistant's own echo making sound? (Two classic double-talk rules.)

    From frames the canceller found to be pure echo it learns, as high percentiles over the last
    few seconds (robust to the few frames of a visitor's onset that AEC3 also mutes), two levels
    relative to the loudest recent reference: the raw echo (Geigel's rule) and what AEC3 leaves of
    it. A frame is near-end speech when the raw microphone is louder than any echo could be, or
    when the canceller's output is well above the residue it leaves of pure echo: AEC3 mutes a
    visitor's onset by 30-40 dB, but leaves far more than the 50-70 dB it takes off pure echo.
    Until it has seen enough echo it knows nothing (``erl_db`` None) and only the raw rule,
    assuming echo as loud as the reference, can fire.
    """

    def __init__(self, margin_db: float = 4.0, residual_margin_db: float = 20.0, tail_frames: int = 4,
                 pure_echo_db: float = 25.0, history: int = 100, min_frames: int = 8, percentile: float = 90.0) -> None:
        self.margin_db = margin_db
        self.residual_margin_db = residual_margin_db
        self.pure_echo_db = pure_echo_db
        self.min_frames = min_frames
        self.percentile = percentile
        self.erl_db: float | None = None
        self.residual_db: float | None = None
        self._refs: collections.deque[float] = collections.deque(maxlen=tail_frames)
        self._erl: collections.deque[float] = collections.deque(maxlen=history)
        self._res: collections.deque[float] = collections.deque(maxlen=history)

    def update(self, mic_db: float, out_db: float, ref_db: float) -> bool:
        self._refs.append(ref_db)
        ref_peak = max(self._refs)
        if ref_db > 40.0 and mic_db - out_db > self.pure_echo_db:
            self._erl.append(mic_db - ref_peak)
            self._res.append(out_db - ref_peak)
            if len(self._erl) >= self.min_frames:
                self.erl_db = float(np.percentile(self._erl, self.percentile))
                self.residual_db = float(np.percentile(self._res, self.percentile))
        if mic_db > ref_peak + (self.erl_db if self.erl_db is not None else 0.0) + self.margin_db:
            return True
        return self.residual_db is not None and out_db > ref_peak + self.residual_db + self.residual_margin_db
