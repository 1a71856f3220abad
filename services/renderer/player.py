"""The frame loop: a steady frame rate on a worker of its own, each frame timed to the voice's clock.

Frame ``k`` is due on screen at ``t0 + k / fps``. The loop starts rendering it early by its
recent render time (90th percentile), samples the mouth (``Timeline``) and idle life for the
due time, waits until just before the due time, then shows it; so what is on screen at a
moment is what the sound is doing then. When rendering takes about a whole period, a frame
may come up to half a period late; a frame that cannot even make that is skipped, not shown
later still: skipped slots are the dropped frames.

A new utterance moves the frame grid onto its sound: the voice schedules a reply's first
sentence only ~30 ms ahead (``voice.lead_ms``), so waiting for the next tick of a fixed grid
would show its first mouth up to a whole period (40 ms at 25 fps) after the sound starts. When
an utterance's mouths arrive, the next slot is brought forward to the moment its first mouth
frame is due (``play_at - lead_s``), or as soon as a frame can be rendered when that moment
has passed; the grid goes on from there (one short frame interval, never a long one).

The A/V offset is measured, not assumed: for every frame of speech the loop takes the time it
was really shown and the time its mouth's sound leaves the speaker according to the latest
``voice.playback`` report (not the timeline's smoothed estimate), and reports the difference
(positive: mouth late).

Everything that other threads call (``add``, ``playback``, ``stop``, ``look_at``...) is
short and takes one lock. No ZeroMQ here: the service passes messages in and gets frames out
through ``on_frame``. The frame loop is one of the runtime's workers (``workers``: the service
passes its group; alone, the player makes its own).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable

import numpy as np

from assistant.workers import Workers
from hardware.screen import Screen

from .idle import IdleLife
from .synth import FaceSynth
from .timeline import Timeline, TimelineSettings

log = logging.getLogger(__name__)

_MARGIN_NS = 2_000_000  # wake-up jitter of a sleeping thread on a loaded kiosk


@dataclass(frozen=True)
class ShownFrame:
    """One frame as it was shown."""

    index: int
    """Frame slot number since the loop started (skipped slots count)."""
    due_ns: int
    """When it was meant to be seen."""
    shown_ns: int
    """When the screens had it."""
    landmarks: np.ndarray
    """(68, 2) float32 output-pixel landmarks of the frame."""
    mouth_open: float
    """Inner-lip gap in inter-ocular units."""
    utterance_id: str
    """Utterance shown, empty at rest."""
    audio_s: float
    """Sound time (s from the utterance's first sample) that the mouth shows."""
    av_offset_ms: float | None
    """Shown time minus the time that sound left the speaker; None when not speaking."""
    render_ms: float
    """Time spent rendering it."""


@dataclass(frozen=True)
class PlayerStats:
    """What happened since the previous :meth:`FacePlayer.take_stats`."""

    fps: float
    frames: int
    dropped: int
    av_offset_ms: float | None
    av_offset_ms_p95: float | None
    render_ms: float


class _Clock:
    """Latest voice clock of one utterance: monotonic ns of its first sample leaving the speaker."""

    __slots__ = ("start_ns", "sample_rate")

    def __init__(self, start_ns: float, sample_rate: int):
        self.start_ns, self.sample_rate = start_ns, sample_rate


class FacePlayer:
    """Renders and shows frames at ``fps`` until closed."""

    def __init__(self, synth: FaceSynth, open_screens: Callable[[], list[Screen]], fps: float,
                 idle: IdleLife, lead_s: float = 0.02, timeline: TimelineSettings = TimelineSettings(),
                 on_frame: Callable[[ShownFrame], None] | None = None, gaze_timeout_s: float = 1.0,
                 workers: Workers | None = None):
        if not 1.0 <= fps <= 120.0:
            raise ValueError(f"renderer fps {fps} out of range: use 1 to 120")
        self.synth, self.fps, self.idle = synth, float(fps), idle
        self.period_ns = 1e9 / self.fps
        self.timeline = Timeline(timeline, lead_s)
        self.lead_s = lead_s
        self.on_frame = on_frame
        self.gaze_timeout_ns = int(gaze_timeout_s * 1e9)
        self.screens: list[Screen] = []
        self._open_screens = open_screens
        self._lock = threading.Lock()
        self._clocks: dict[str, _Clock] = {}
        self._stops = 0  # barge-ins so far; a frame rendered across one is redrawn at rest
        self._gaze_at = 0
        self._quit = threading.Event()
        self._wake = threading.Event()  # set by add(): a new utterance may move the next slot
        self._align_ns: float | None = None  # first mouth time of an utterance added since the last slot
        self.realigned = 0
        self._opened: Future = Future()
        self._workers = workers if workers is not None else Workers("renderer")
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.dropped = 0
        self._render_ns: collections.deque[int] = collections.deque(maxlen=30)
        self._show_ns = 0.0
        self._interval = self._new_interval()
        self._last_offset: float | None = None

    # --- control, from any thread ------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        """Open the screens on the frame thread and start the loop; raises what opening raised."""
        self._thread = self._workers.start("renderer-frames", self._run)
        self._opened.result(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self._quit.set()
        self._wake.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout)

    def add(self, utterance_id: str, mouths: np.ndarray, neutral: np.ndarray, play_at_ns: int,
            sample_rate: int, n_samples: int) -> None:
        """Schedule an utterance's driven mouths; a clock already reported for it wins over ``play_at_ns``."""
        with self._lock:
            clock = self._clocks.setdefault(utterance_id, _Clock(float(play_at_ns), sample_rate))
            self.timeline.add(utterance_id, mouths, neutral, self.fps, int(clock.start_ns), sample_rate, n_samples)
            first = clock.start_ns - self.lead_s * 1e9  # the driver's frame 0 is due on screen then
            if self._align_ns is None or first < self._align_ns:
                self._align_ns = first
        self._wake.set()

    def announce(self, utterance_id: str, play_at_ns: int, sample_rate: int) -> None:
        """An utterance was announced (its mouths come later): start its clock at ``play_at_ns``."""
        with self._lock:
            self._clocks.setdefault(utterance_id, _Clock(float(play_at_ns), sample_rate))
            if len(self._clocks) > 64:  # forget the oldest; replies have a handful of sentences
                self._clocks.pop(next(iter(self._clocks)))

    def playback(self, utterance_id: str, position_samples: int, at_ns: int, sample_rate: int) -> None:
        """A ``voice.playback`` clock report."""
        if sample_rate <= 0:
            return
        start = at_ns - position_samples / sample_rate * 1e9
        with self._lock:
            self._clocks[utterance_id] = _Clock(start, sample_rate)
            self.timeline.playback(utterance_id, position_samples, at_ns)

    def finish(self, utterance_id: str, interrupted: bool) -> None:
        with self._lock:
            self.timeline.finish(utterance_id, interrupted)
            if interrupted:
                self._stops += 1

    def stop(self) -> None:
        """Barge-in: the next frame shown is at rest, even one being rendered now."""
        with self._lock:
            self.timeline.stop()
            self._align_ns = None
            self._stops += 1
        for screen in self.screens:
            cut = getattr(screen, "silence_from", None)
            if cut is not None:
                cut(time.monotonic_ns())

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str) -> None:
        """Hand an utterance's sound to the outputs that play or store it."""
        for screen in self.screens:
            try:
                screen.audio(pcm, sample_rate, play_at_ns, utterance_id)
            except Exception as exc:  # noqa: BLE001 - one output must not break the others
                log.warning("screen %s refused audio: %s", type(screen).__name__, exc)

    def look_at(self, gaze: tuple[float, float] | None) -> None:
        """Where the visitor is (on-screen gaze direction), or None when nobody is."""
        with self._lock:
            self.idle.set_target(gaze)
            self._gaze_at = time.monotonic_ns()

    def listening(self, on: bool) -> None:
        with self._lock:
            self.idle.set_listening(on)

    def take_stats(self) -> PlayerStats:
        """Statistics since the previous call."""
        with self._lock:
            iv, self._interval = self._interval, self._new_interval()
        span = max(time.monotonic_ns() - iv["since"], 1) / 1e9
        offsets = np.array(iv["offsets"])
        if len(offsets):
            self._last_offset = float(offsets.mean())
            p95 = float(np.percentile(np.abs(offsets), 95))
        else:
            p95 = None
        render = float(np.mean(iv["render"])) if iv["render"] else 0.0
        return PlayerStats(fps=iv["frames"] / span, frames=self.frames, dropped=self.dropped,
                           av_offset_ms=self._last_offset, av_offset_ms_p95=p95, render_ms=render)

    @staticmethod
    def _new_interval() -> dict:
        return {"since": time.monotonic_ns(), "frames": 0, "offsets": [], "render": []}

    # --- the frame thread --------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.screens = self._open_screens()
        except BaseException as exc:  # noqa: BLE001 - reported to start() and from there to the operator
            self._opened.set_exception(exc)
            return
        self._opened.set_result(None)
        try:
            self._loop()
        except Exception:  # noqa: BLE001
            log.exception("frame loop failed")
        finally:
            for screen in self.screens:
                try:
                    screen.close()
                except Exception as exc:  # noqa: BLE001
                    log.warning("closing %s: %s", type(screen).__name__, exc)

    def _render_estimate(self) -> float:
        if not self._render_ns:
            return self.period_ns / 2
        return float(np.percentile(self._render_ns, 90))

    def _loop(self) -> None:
        t0 = time.monotonic_ns() + self.period_ns
        k = 0
        last_due = 0
        while not self._quit.is_set():
            prep = self._render_estimate() + self._show_ns + _MARGIN_NS
            now = time.monotonic_ns()
            # A frame may be shown up to half a period late (its mouth is then at most that much
            # behind the sound); later than that, its slot is skipped rather than shown late.
            reachable = math.ceil((now + prep - self.period_ns / 2 - t0) / self.period_ns)
            if reachable > k:  # too late for slot k: skip to the first slot we can still make
                self.dropped += reachable - k
                k = reachable
            due = int(t0 + k * self.period_ns)
            while True:  # wait to start rendering; a new utterance may bring the slot forward
                moved = self._aligned(due, prep, last_due)
                if moved != due:
                    t0 += moved - due
                    due = moved
                    self.realigned += 1
                delay = (due - prep - time.monotonic_ns()) / 1e9
                if delay <= 0 or self._quit.is_set():
                    break
                self._wake.wait(delay)
                self._wake.clear()
            if self._quit.is_set():
                break
            frame, info = self._render(due)
            wait = (due - self._show_ns - time.monotonic_ns()) / 1e9
            if wait > 0 and self._quit.wait(wait):
                break
            a = time.monotonic_ns()
            for screen in self.screens:
                screen.show(frame, due)
            shown = time.monotonic_ns()
            self._show_ns = 0.9 * self._show_ns + 0.1 * (shown - a)
            self._finish_frame(k, due, shown, info)
            last_due = due
            k += 1

    def _aligned(self, due: int, prep: float, last_due: int) -> int:
        """The due time of the next slot: ``due``, or earlier when an utterance added since the
        last slot has its first mouth before it (then at that moment, or as soon as a frame can
        be rendered, but after the previous frame)."""
        with self._lock:
            first = self._align_ns
            if first is None or first >= due:
                return due  # none, or its first mouth is this slot's or a later one's business
            self._align_ns = None
        # The sound has started or is about to: render now. Typical (median) render time, not
        # the cautious 90th percentile that paces the grid: this one frame may be a little late
        # rather than surely a lot late.
        soon = float(np.median(self._render_ns)) + self._show_ns + _MARGIN_NS if self._render_ns else prep
        target = int(max(first, time.monotonic_ns() + min(prep, soon), last_due + 1))
        return target if target < due - _MARGIN_NS else due

    def _sample(self, due: int):
        """Mouth and idle state for the due time, under the lock."""
        with self._lock:
            stops = self._stops
            mouth = self.timeline.mouth_at(due)
            if self._gaze_at and due - self._gaze_at > self.gaze_timeout_ns:
                self.idle.set_target(None)  # the camera went quiet: nobody to look at
                self._gaze_at = 0
            state = self.idle.step(due / 1e9, speaking=mouth.speaking)
            clock = self._clocks.get(mouth.utterance_id) if mouth.utterance_id else None
        return stops, mouth, state, clock

    def _render(self, due: int):
        a = time.monotonic_ns()
        stops, mouth, state, clock = self._sample(due)
        frame = self.synth.render(mouth.offset, state.blink, state.gaze, state.head)
        with self._lock:
            stopped = self._stops != stops
        if stopped and mouth.offset is not None:  # barge-in while drawing: show rest instead
            with self._lock:
                mouth, clock = self.timeline.mouth_at(due), None
            frame = self.synth.render(mouth.offset, state.blink, state.gaze, state.head)
        landmarks = self.synth.landmarks(mouth.offset, state.blink, state.head)
        self._render_ns.append(time.monotonic_ns() - a)
        return frame, (mouth, clock, landmarks, self._render_ns[-1])

    def _finish_frame(self, k: int, due: int, shown: int, info) -> None:
        mouth, clock, landmarks, render_ns = info
        self.frames += 1
        content_s = mouth.audio_s + self.lead_s  # the driver frame shown is the one for this sound time
        offset = None
        if mouth.speaking and clock is not None:
            offset = (shown - (clock.start_ns + content_s * 1e9)) / 1e6
        eyes = landmarks[42:48].mean(0) - landmarks[36:42].mean(0)
        opening = float(np.hypot(*(landmarks[66] - landmarks[62])) / max(np.hypot(*eyes), 1e-6))
        with self._lock:
            iv = self._interval
            iv["frames"] += 1
            iv["render"].append(render_ns / 1e6)
            if offset is not None:
                iv["offsets"].append(offset)
        if self.on_frame is not None:
            # A frame belongs to the utterance from its first driver frame on (the mouth clock at 0, ``lead_s`` before
            # the sound), not while the mouth fades in from rest towards it: that starts up to ``blend_in_s`` earlier
            # when the utterance is announced ahead (a held answer), and would read as the mouth leading the sound.
            own = mouth.utterance_id if mouth.offset is not None and content_s >= 0 else ""
            self.on_frame(ShownFrame(k, due, shown, landmarks, opening, own,
                                     content_s, offset, render_ns / 1e6))
