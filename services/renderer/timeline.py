"""Which mouth to show at a monotonic time: utterance frames slaved to the voice's playback clock.

Each utterance brings its per-frame mouths (from any ``MouthDriver``) and ``play_at_ns``; the
voice's ``voice.playback`` reports (sample position at a monotonic time) correct our estimate
of when its first sample left the speaker. Frame ``k`` is shown when the audio clock reaches
``k / fps`` (a little earlier by ``lead_s``: lips move slightly before the sound they make),
interpolated between frames because screen and driver rates differ. The mouth fades in and out
over a few frames so starts and ends never jump; ``stop`` drops everything at once, so the very
next frame is at rest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimelineSettings:
    """Tuning of the mouth's blending and clock following (not configuration: the one configured
    timing, ``renderer.lead_s``, is ``Timeline.lead_s``)."""

    blend_in_s: float = 0.08
    blend_out_s: float = 0.1
    resync_s: float = 0.08
    """A clock report further off than this snaps; smaller differences are smoothed."""
    clock_gain: float = 0.3
    """Fraction of a small clock error corrected per report (filters report jitter)."""
    keep_s: float = 2.0
    """Finished utterances are forgotten this long after their end."""


@dataclass
class _Utterance:
    mouths: np.ndarray  # (n, 20, 2) offsets from the driver's neutral
    fps: float
    start_ns: float  # estimated monotonic time of the first sample
    duration_s: float
    sample_rate: int


@dataclass(frozen=True)
class MouthSample:
    """The mouth at one instant."""

    offset: np.ndarray | None
    """(20, 2) canonical offset from neutral, or None at rest."""
    speaking: bool = False
    """The sound of an utterance is playing."""
    utterance_id: str = ""
    """The utterance shown (most weight), empty at rest."""
    audio_s: float = 0.0
    """Audio clock of that utterance (seconds from its first sample)."""


REST = MouthSample(None)


@dataclass
class Timeline:
    """Utterances waiting or playing, and the mouth they imply at any time."""

    settings: TimelineSettings = field(default_factory=TimelineSettings)
    lead_s: float = 0.02
    """Show the mouth this much before the sound (``renderer.lead_s``; audio-late is less noticeable, BT.1359)."""
    _utts: dict[str, _Utterance] = field(default_factory=dict)

    def add(self, utterance_id: str, mouths: np.ndarray, neutral: np.ndarray, fps: float,
            play_at_ns: int, sample_rate: int, n_samples: int) -> None:
        """Schedule an utterance's driven mouths (frames, 20, 2) to play from ``play_at_ns``."""
        mouths = np.asarray(mouths, dtype=np.float32)
        if mouths.ndim != 3 or mouths.shape[1:] != (20, 2) or len(mouths) == 0:
            raise ValueError(f"mouths must be (frames, 20, 2), got {mouths.shape}")
        if fps <= 0 or sample_rate <= 0:
            raise ValueError("fps and sample_rate must be positive")
        offsets = mouths - np.asarray(neutral, dtype=np.float32)[None]
        self._utts[utterance_id] = _Utterance(offsets, float(fps), float(play_at_ns),
                                              n_samples / sample_rate, sample_rate)

    def playback(self, utterance_id: str, position_samples: int, at_ns: int) -> None:
        """A clock report: ``position_samples`` had left the speaker at ``at_ns``."""
        u = self._utts.get(utterance_id)
        if u is None:
            return
        est = at_ns - position_samples / u.sample_rate * 1e9
        err = est - u.start_ns
        if abs(err) > self.settings.resync_s * 1e9:
            log.info("utterance %s clock off by %.0f ms: resync", utterance_id, err / 1e6)
            u.start_ns = est
        else:
            u.start_ns += self.settings.clock_gain * err

    def finish(self, utterance_id: str, interrupted: bool = False) -> None:
        """``voice.done``: an interrupted utterance vanishes now; a finished one fades out."""
        if interrupted:
            self._utts.pop(utterance_id, None)

    def stop(self) -> None:
        """Barge-in: drop every utterance; the next frame shows the rest mouth."""
        self._utts.clear()

    @property
    def pending(self) -> int:
        """Utterances scheduled, playing or fading out."""
        return len(self._utts)

    def mouth_at(self, t_ns: int) -> MouthSample:
        """The mouth to show at monotonic ``t_ns``."""
        s = self.settings
        total = None
        best = (0.0, "", 0.0)
        speaking = False
        for uid in list(self._utts):
            u = self._utts[uid]
            audio = (t_ns - u.start_ns) / 1e9
            m = audio + self.lead_s  # mouth clock
            if m > u.duration_s + s.blend_out_s + s.keep_s:
                del self._utts[uid]
                continue
            w = min(max((m + s.blend_in_s) / s.blend_in_s, 0.0), 1.0) * \
                min(max((u.duration_s + s.blend_out_s - m) / s.blend_out_s, 0.0), 1.0)
            speaking |= 0.0 <= audio < u.duration_s
            if w <= 0.0:
                continue
            w = w * w * (3 - 2 * w)
            f = min(max(m * u.fps, 0.0), len(u.mouths) - 1)
            k = int(f)
            frac = f - k
            off = u.mouths[k] if frac == 0 or k + 1 >= len(u.mouths) else \
                u.mouths[k] * (1 - frac) + u.mouths[k + 1] * frac
            total = w * off if total is None else total + w * off
            if w > best[0]:
                best = (w, uid, audio)
        if total is None:
            return MouthSample(None, speaking)
        return MouthSample(total, speaking, best[1], best[2])
