"""Who is speaking: each tracked face's mouth opening against the microphone's level.

``MouthReader`` measures a face's inner-lip opening with dlib's 68-point predictor (~2 ms a face),
normalised by the distance between the outer eye corners so it does not depend on distance.
``ActiveSpeaker`` keeps the last few seconds of every face's opening and of the microphone's level
and VAD verdict (``hearing.activity``, each path's latency subtracted). While speech is heard it
scores each face over the stretch of speech under way (from its onset after a pause of 250 ms,
at most 3 time constants back) with two cues:

- activity (weight 0.7): how much more the lips move (RMS change of the opening over 100 ms)
  now than in the face's own quiet moments: a speaker's lips move with the speech and rest in
  the pauses; a listener's stay still; a chewing or smiling face moves in the pauses too;
- sync (weight 0.3): the exponentially weighted correlation of the opening with the level (lips
  open with the syllables), its mouth spread floored so a still face scores ~0.

Scoring only the current stretch keeps the previous speaker's turn, when this face's mouth was
still in whatever pose, out of the numbers. The speaker changes when a challenger's score beats
the current one's by ``margin`` for ``hold_ms``: a cough or a nod does not flip it.

Everything runs on the camera's capture thread; ``add_audio`` is the one call made from another
thread (the bus handler) and only appends to a deque.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from assistant.config import CameraSettings

log = logging.getLogger(__name__)

NS = 1_000_000_000
#: Inner-lip landmark pairs (upper, lower) of the 68-point scheme, and the outer eye corners.
_LIPS = ((61, 67), (62, 66), (63, 65))
_EYES = (36, 45)
#: Spread of a still mouth's opening (landmark jitter, in eye-distance units): the floor that keeps a
#: still face's score near zero instead of a correlation of noise.
MOUTH_FLOOR = 0.02
#: Seconds of history kept per face and for the microphone.
HISTORY_S = 4.0
#: Share of the lips-to-sound sync in a face's score (the rest: lip motion in speech over motion in quiet).
SYNC_WEIGHT = 0.3
#: RMS change of a still mouth's opening between frames (landmark jitter).
MOTION_FLOOR = 0.005
#: A pause this long ends a stretch of speech (a new speaker may begin after it).
PAUSE_NS = 250_000_000
#: Scoring starts this long before the stretch of speech (the mouth opens as the sound starts).
PREROLL_NS = 100_000_000
#: Lip motion is the change of the opening over this long (about half a syllable): landmark jitter is the
#: same over any lag, a syllable's opening and closing grows with it up to ~100 ms.
MOTION_LAG_NS = 100_000_000


def mouth_opening(points: np.ndarray) -> float:
    """Inner-lip opening over the outer eye-corner distance, from 68 (x, y) landmarks."""
    gap = float(np.mean([points[lo, 1] - points[up, 1] for up, lo in _LIPS]))
    eyes = float(np.hypot(*(points[_EYES[1]] - points[_EYES[0]])))
    return max(0.0, gap) / max(eyes, 1.0)


def lip_motion(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """|opening(t) - opening(t - MOTION_LAG_NS)| at each sample after the first lag, and those times."""
    t, o = m[:, 0], m[:, 1]
    keep = t >= t[0] + MOTION_LAG_NS
    if MOTION_LAG_NS <= 0 or keep.sum() < 2:
        return np.abs(np.diff(o)), t[1:]
    return np.abs(o[keep] - np.interp(t[keep] - MOTION_LAG_NS, t, o)), t[keep]


class MouthReader:
    """dlib's 68-point shape predictor on a face box of a grey image."""

    def __init__(self) -> None:
        try:
            import dlib
        except ImportError as exc:  # pragma: no cover - the vision extra is installed where this runs
            raise RuntimeError("dlib is not installed; pip install 'embodied-assistant[vision]'") from exc
        from .recognition import models_dir

        path = models_dir() / "shape_predictor_68_face_landmarks.dat"
        if not path.is_file():
            raise RuntimeError(f"{path} is missing; pip install 'embodied-assistant[vision]' (face_recognition_models)")
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(path))

    def landmarks(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        x, y, w, h = box
        shape = self.predictor(gray, self.dlib.rectangle(int(x), int(y), int(x + w), int(y + h)))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def read(self, gray: np.ndarray, box: tuple[float, float, float, float]) -> float:
        return mouth_opening(self.landmarks(gray, box))


@functools.lru_cache(maxsize=1)
def shared_reader() -> MouthReader:
    """One reader per process (the model is ~100 MB and read-only): pipelines rebuilt on a new frame size share it."""
    return MouthReader()


@dataclass(frozen=True)
class SpeakerChange:
    """The active speaker changed (the service turns it into ``vision.speaker``)."""

    track_id: int
    since_ns: int
    confidence: float
    previous: int


class ActiveSpeaker:
    def __init__(self, settings: CameraSettings) -> None:
        """Reads the ``speaker_*`` keys of the camera section."""
        self.tau_ns = settings.speaker_window_s * NS
        self.margin = settings.speaker_margin
        self.min_score = settings.speaker_min_score
        self.hold_ns = int(settings.speaker_hold_ms * 1e6)
        self.video_lag_ns = int(settings.speaker_video_latency_ms * 1e6)
        self.audio_lag_ns = int(settings.speaker_audio_latency_ms * 1e6)
        self.inbox: deque = deque()
        """Audio batches from the bus thread: (t0_ns, frame_ms, energies, voiced)."""
        self._audio: deque[tuple[int, float, bool]] = deque()  # (centre ns, level dB, voiced)
        self._mouths: dict[int, deque[tuple[int, float]]] = {}
        self.current = -1
        self._challenger = -1
        self._challenge_since = 0
        self.scores: dict[int, float] = {}
        """The last scores per track (for the bench and the status page)."""
        self.audio_horizon_ns = 0
        """End of the newest audio frame heard (corrected for the audio latency)."""
        self._ends: deque[int] = deque()
        """Ends of the audio batches not judged yet."""
        self.scorings = 0
        """How many times faces were scored (while speech was heard)."""

    # --- input -------------------------------------------------------------------------------
    def add_audio(self, t0_ns: int, frame_ms: int, energy_db: list[float], voiced: list[bool]) -> None:
        """A batch of the microphone's frames (any thread)."""
        self.inbox.append((t0_ns, frame_ms, list(energy_db), list(voiced)))

    def hears(self, now_ns: int) -> bool:
        """Whether the microphone's activity has been arriving (within the last ``HISTORY_S``)."""
        self._drain()
        return self.audio_horizon_ns > 0 and now_ns - self.audio_horizon_ns < HISTORY_S * NS

    def add_mouth(self, track_id: int, ts_ns: int, opening: float) -> None:
        q = self._mouths.setdefault(track_id, deque())
        q.append((ts_ns - self.video_lag_ns, float(opening)))
        while q and q[0][0] < ts_ns - HISTORY_S * NS:
            q.popleft()

    def _drain(self) -> None:
        while self.inbox:
            t0, frame_ms, energies, voiced = self.inbox.popleft()
            step = frame_ms * 1_000_000
            t0 -= self.audio_lag_ns
            for i, (e, v) in enumerate(zip(energies, voiced)):
                c = t0 + i * step + step // 2
                if self._audio and c <= self._audio[-1][0]:
                    continue  # out of order or repeated: keep the clock monotonic
                self._audio.append((c, float(e), bool(v)))
            if t0 + len(energies) * step > self.audio_horizon_ns:
                self.audio_horizon_ns = t0 + len(energies) * step
                self._ends.append(self.audio_horizon_ns)
        while self._audio and self._audio[0][0] < self.audio_horizon_ns - HISTORY_S * NS:
            self._audio.popleft()
        while self._ends and self._ends[0] < self.audio_horizon_ns - HISTORY_S * NS:
            self._ends.popleft()

    # --- decision ------------------------------------------------------------------------------
    def update(self, live: list[int]) -> SpeakerChange | None:
        """Score the faces in ``live`` (track ids) over the audio heard so far; a change or None."""
        self._drain()
        for tid in [t for t in self._mouths if t not in live]:
            del self._mouths[tid]
        if self.current != -1 and self.current not in live:
            prev, self.current = self.current, -1
            self._challenger = -1
            return SpeakerChange(-1, self.audio_horizon_ns, 0.0, prev)
        if len(self._audio) < 4 or not self._ends:
            return None  # nothing new heard since the last scoring (audio comes every ~150 ms)
        audio = np.array([(c, e, v) for c, e, v in self._audio], dtype=np.float64)
        # Each batch is judged at its own end, in order: a loaded machine delivers them in bursts, and
        # judging only the newest end would skip the speech the burst held (one scoring per line).
        while self._ends:
            end = self._ends.popleft()
            change = self._score_at(audio[audio[:, 0] <= end], end, live)
            if change is not None:
                return change  # the later ends wait for the next frame
        return None

    def _score_at(self, audio: np.ndarray, end: int, live: list[int]) -> SpeakerChange | None:
        if len(audio) < 4:
            return None
        recent = audio[audio[:, 0] >= end - 0.3 * NS]
        if not len(recent) or recent[:, 2].mean() < 0.3:
            self._challenger = -1
            return None  # nobody speaks now: the last speaker stays who the conversation is with
        start = max(self._run_start(audio) - PREROLL_NS, end - 3 * self.tau_ns)
        self.scores = {tid: self._score(tid, audio, start, end) for tid in live}
        self.scorings += 1
        return self._decide(end)

    def _run_start(self, audio: np.ndarray) -> float:
        """Start of the speech under way: back from the newest frame over voiced frames and pauses
        shorter than ``PAUSE_NS``. Scoring only this stretch keeps the previous speaker's turn (when
        this face's mouth was still, in whatever pose) out of the correlation."""
        voiced = audio[:, 2] > 0.5
        idx = np.flatnonzero(voiced)
        if not len(idx):
            return float(audio[-1, 0])
        times = audio[idx, 0]
        gaps = np.flatnonzero(np.diff(times) > PAUSE_NS)
        return float(times[gaps[-1] + 1] if len(gaps) else times[0])

    def _score(self, tid: int, audio: np.ndarray, start: float, end: int) -> float:
        """``SYNC_WEIGHT`` x the sync of lips and sound + the rest x how much more the lips move in this
        stretch of speech than in the face's own quiet moments (both in -1..1)."""
        q = self._mouths.get(tid)
        if not q or len(q) < 4:
            return 0.0
        m = np.array(q, dtype=np.float64)
        m = m[m[:, 0] <= end]
        now = m[m[:, 0] >= start]
        if len(now) < 3:
            return 0.0
        return SYNC_WEIGHT * self._sync(now, audio, end) + (1 - SYNC_WEIGHT) * self._activity(m, audio, start)

    def _sync(self, m: np.ndarray, audio: np.ndarray, end: int) -> float:
        """Exponentially weighted correlation of the opening with the level (a still mouth: ~0)."""
        level = np.interp(m[:, 0], audio[:, 0], audio[:, 1])
        w = np.exp(-(end - m[:, 0]) / self.tau_ns)
        w /= w.sum()
        o = m[:, 1] - np.sum(w * m[:, 1])
        a = level - np.sum(w * level)
        sd_a = float(np.sqrt(np.sum(w * a * a)))
        sd_o = float(np.sqrt(np.sum(w * o * o)))
        if sd_a < 1.0:
            return 0.0  # a steady level: nothing to line the mouth up with
        return float(np.sum(w * o * a) / (sd_a * max(sd_o, MOUTH_FLOOR)))

    def _activity(self, m: np.ndarray, audio: np.ndarray, start: float) -> float:
        """Lip motion (RMS change of the opening over ``MOTION_LAG_NS``) while this stretch of speech
        is heard, against the face's motion while nothing is heard (a chewing or smiling face moves
        then too; a speaker's lips rest)."""
        if len(m) < 3:
            return 0.0
        step, t = lip_motion(m)
        voiced = np.interp(t, audio[:, 0], audio[:, 2]) > 0.5
        talk = step[t >= start]
        rest = step[(t < start) & ~voiced]
        if len(talk) < 2:
            return 0.0
        a = float(np.sqrt(np.mean(talk ** 2)))
        b = float(np.sqrt(np.mean(rest ** 2))) if len(rest) >= 4 else MOTION_FLOOR
        return (a - max(b, MOTION_FLOOR)) / max(a, b, MOTION_FLOOR)

    def _decide(self, end: int) -> SpeakerChange | None:
        if not self.scores:
            return None
        best = max(self.scores, key=self.scores.__getitem__)
        top = self.scores[best]
        held = self.scores.get(self.current, -1.0) if self.current != -1 else -1.0
        if best == self.current or top < self.min_score or (self.current != -1 and top < held + self.margin):
            self._challenger = -1
            return None
        if best != self._challenger:
            self._challenger, self._challenge_since = best, end
        if end - self._challenge_since < self.hold_ns:
            return None
        prev, self.current = self.current, best
        self._challenger = -1
        return SpeakerChange(best, self._onset(self._challenge_since), round(min(1.0, max(0.0, top)), 3), prev)

    def _onset(self, before_ns: int) -> int:
        """The start of the voiced run under way (or last begun) when the challenge started, after a
        pause of >= 90 ms (at most ``HISTORY_S`` back); without one, half a time constant before it."""
        fallback = int(before_ns - self.tau_ns / 2)
        quiet, start = 0, None
        for c, _, v in self._audio:
            if c > before_ns:
                break
            if v:
                if start is None or quiet >= 3:
                    start = c
                quiet = 0
            else:
                quiet += 1
        if start is None:
            return fallback
        return int(start - 15_000_000)
