"""Schedules utterances on a speaker: first sample out at ``play_at``, position, stop, done.

The player is the speaker's source (see ``hardware.speaker``): for each block it is told when
the block's first sample leaves the speaker, so it starts an utterance at the sample that
leaves at ``play_at_ns`` (the device's output latency is already in that time). Stopping
silences the next block handed to the device, with a short fade against a click; what the
device already holds still plays, so stop latency is the device's buffer plus one block.

Callbacks (``on_start``, ``on_done``) run on the player's notifier thread at the moment the
sound starts / ends at the speaker, never on the audio thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from hardware.speaker import Speaker

log = logging.getLogger(__name__)

NS = 1_000_000_000


@dataclass(frozen=True)
class Position:
    """Playback clock of the current utterance."""

    utterance_id: str
    position_samples: int
    """Samples of the utterance (at its own rate) that have left the speaker at ``at_ns``."""
    at_ns: int
    sample_rate: int


@dataclass
class _Item:
    utterance_id: str
    pcm: np.ndarray  # at the speaker's rate
    sample_rate: int  # the utterance's own rate, for positions
    play_at_ns: int
    on_start: Callable[[str, int], None] | None
    on_done: Callable[[str, str, str], None] | None
    offset: int = 0
    start_ns: int | None = None
    end_ns: int | None = None
    status: str = ""
    detail: str = ""
    stopped_at: int = field(default=0)


class Player:
    """Plays int16 utterances on a ``Speaker`` at given monotonic times."""

    def __init__(self, speaker: Speaker, fade_ms: float = 2.0) -> None:
        self.speaker = speaker
        self.rate = speaker.sample_rate
        self._fade = max(1, int(fade_ms * self.rate / 1000))
        self._queue: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._stop_requested: int | None = None
        self._stop_detail = ""
        self._started_items: deque[_Item] = deque(maxlen=8)  # for positions, newest last
        self._events: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self.stops: list[tuple[int, int]] = []
        """(stop requested ns, ns the first silenced sample leaves) per stop, for latency checks."""
        self._notifier = threading.Thread(target=self._notify_loop, name="player-events", daemon=True)
        self._notifier.start()
        speaker.start(self._render)

    # -- public API -----------------------------------------------------------------------

    def earliest_play_at_ns(self, margin_s: float = 0.005) -> int:
        """The soonest ``play_at`` that can be honoured: now + device latency + one block + margin."""
        block_s = self.speaker.block_frames / self.rate
        return time.monotonic_ns() + int((self.speaker.output_latency_s + block_s + margin_s) * NS)

    def schedule(self, utterance_id: str, pcm: np.ndarray, sample_rate: int, play_at_ns: int,
                 on_start: Callable[[str, int], None] | None = None,
                 on_done: Callable[[str, str, str], None] | None = None) -> None:
        """Queue ``pcm`` to start leaving the speaker at ``play_at_ns`` (after what is queued).

        ``on_start(utterance_id, start_ns)`` and ``on_done(utterance_id, status, detail)`` with
        status ``finished`` or ``interrupted`` are called when that happens at the speaker.
        """
        pcm = np.asarray(pcm, dtype=np.int16)
        if sample_rate != self.rate and pcm.size:
            import soxr

            pcm = np.clip(np.round(soxr.resample(pcm.astype(np.float32), sample_rate, self.rate)),
                          -32768, 32767).astype(np.int16)
        item = _Item(utterance_id, pcm, sample_rate, play_at_ns, on_start, on_done)
        with self._lock:
            self._queue.append(item)

    def stop(self, detail: str = "stopped") -> int:
        """Silence now and drop everything queued; returns the ``monotonic_ns`` of the request."""
        now = time.monotonic_ns()
        with self._lock:
            self._stop_requested = now
            self._stop_detail = detail
        return now

    def position(self, now_ns: int | None = None) -> Position | None:
        """Where the utterance at the speaker is now; ``None`` when nothing plays."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        with self._lock:
            items = [i for i in self._started_items if i.start_ns is not None and i.start_ns <= now]
        if not items:
            return None
        item = items[-1]
        end = item.stopped_at or (item.start_ns + len(item.pcm) * NS // self.rate)
        if now >= end:
            return None
        played = now - item.start_ns
        pos = int(played * item.sample_rate // NS)
        return Position(item.utterance_id, min(pos, round(len(item.pcm) * item.sample_rate / self.rate)),
                        now, item.sample_rate)

    @property
    def busy(self) -> bool:
        """Something is playing or queued."""
        now = time.monotonic_ns()
        with self._lock:
            return bool(self._queue) or any(
                (i.stopped_at or i.start_ns + len(i.pcm) * NS // self.rate) > now for i in self._started_items)

    def close(self) -> None:
        """Stop the speaker and the notifier."""
        self.speaker.close()
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._notifier.join(timeout=2)

    # -- audio thread ---------------------------------------------------------------------

    def _render(self, frames: int, leave_ns: int) -> np.ndarray:
        out = np.zeros(frames, dtype=np.int16)
        with self._lock:
            if self._stop_requested is not None:
                self._apply_stop(out, leave_ns)
                return out
            pos = 0
            while pos < frames and self._queue:
                item = self._queue[0]
                if item.start_ns is None:
                    k = round((item.play_at_ns - leave_ns) * self.rate / NS)
                    if k >= frames:
                        break
                    k = max(k, pos)  # late (or right after the previous one): as soon as possible
                    item.start_ns = leave_ns + k * NS // self.rate
                    self._started_items.append(item)
                    pos = k
                    self._emit(item.start_ns, self._started(item))
                n = min(frames - pos, len(item.pcm) - item.offset)
                out[pos:pos + n] = item.pcm[item.offset:item.offset + n]
                item.offset += n
                pos += n
                if item.offset >= len(item.pcm):
                    self._queue.popleft()
                    item.status = "finished"
                    item.end_ns = item.start_ns + len(item.pcm) * NS // self.rate
                    self._emit(item.end_ns, self._done(item))
        return out

    def _apply_stop(self, out: np.ndarray, leave_ns: int) -> None:
        """Called with the lock held: fade the playing utterance out and drop the queue."""
        requested, self._stop_requested = self._stop_requested, None
        item = self._queue[0] if self._queue and self._queue[0].start_ns is not None else None
        silent_from = leave_ns
        if item is not None:
            tail = item.pcm[item.offset:item.offset + min(self._fade, len(out))].astype(np.float32)
            ramp = np.linspace(1.0, 0.0, len(tail), endpoint=False, dtype=np.float32)
            out[:len(tail)] = (tail * ramp).astype(np.int16)
            silent_from = leave_ns + len(tail) * NS // self.rate
        for queued in self._queue:
            queued.status, queued.detail = "interrupted", self._stop_detail
            if queued.start_ns is not None:
                queued.stopped_at = silent_from
            self._emit(silent_from if queued.start_ns is not None else requested, self._done(queued))
        self._queue.clear()
        self.stops.append((requested, silent_from))

    def _started(self, item: _Item) -> Callable[[], None]:
        def call() -> None:
            if item.on_start is not None:
                item.on_start(item.utterance_id, item.start_ns)
        return call

    def _done(self, item: _Item) -> Callable[[], None]:
        def call() -> None:
            if item.on_done is not None:
                item.on_done(item.utterance_id, item.status, item.detail)
        return call

    def _emit(self, due_ns: int, call: Callable[[], None]) -> None:
        with self._wake:
            heapq.heappush(self._events, (due_ns, next(self._seq), call))
            self._wake.notify()

    # -- notifier thread ------------------------------------------------------------------

    def _notify_loop(self) -> None:
        while True:
            with self._wake:
                while not self._closed:
                    now = time.monotonic_ns()
                    if self._events and self._events[0][0] <= now:
                        break
                    timeout = (self._events[0][0] - now) / NS if self._events else None
                    self._wake.wait(timeout)
                if self._closed:
                    return
                _, _, call = heapq.heappop(self._events)
            try:
                call()
            except Exception:  # noqa: BLE001 - a caller's callback must not kill the clock
                log.exception("player callback failed")
