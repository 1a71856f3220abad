"""Schedules utterances on a speaker: first sample out at ``play_at``, position, stop, done.

The player is the speaker's source (see ``hardware.speaker``): for each block it is told when
the block's first sample leaves the speaker, so it starts an utterance at the sample that
leaves at ``play_at_ns`` (the device's output latency is already in that time).

Stopping acts at once: the queue is emptied and the speaker drops the audio it holds
(``Speaker.discard``, with a short fade against a click), so an utterance already handed to the
device in full is cut too and reported ``interrupted``. A device that cannot drop its buffer
gets the fade in the next block and plays out what it holds (stop latency: its buffer plus one
block).

Callbacks (``on_start``, ``on_done``) run on the player's notifier worker (one of the runtime's,
``workers``) at the moment the sound starts / ends at the speaker, never on the audio thread.
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

from assistant.workers import Workers
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


@dataclass(eq=False)  # identity: the arrays inside do not compare
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
    done_sent: bool = False


class Player:
    """Plays int16 utterances on a ``Speaker`` at given monotonic times."""

    def __init__(self, speaker: Speaker, fade_ms: float = 2.0, workers: Workers | None = None) -> None:
        self.speaker = speaker
        self.rate = speaker.sample_rate
        self._fade = max(1, int(fade_ms * self.rate / 1000))
        self._fade_s = fade_ms / 1000
        self._fading: _Item | None = None  # stopped item to fade out in the next block (no discard)
        self._holds = 0  # stops dropping the device's buffer right now (``_render`` plays silence)
        self._queue: deque[_Item] = deque()
        self._lock = threading.Lock()
        self._started_items: deque[_Item] = deque(maxlen=8)  # for positions, newest last
        self._events: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self.stops: deque[tuple[int, int]] = deque(maxlen=256)
        """(stop requested ns, ns from which the speaker is silent) of recent stops, for latency checks."""
        self._notifier = (workers if workers is not None else Workers("player")).start("player-events", self._notify_loop)
        speaker.start(self._render)

    # -- public API -----------------------------------------------------------------------

    def earliest_play_at_ns(self, margin_s: float = 0.005) -> int:
        """The soonest ``play_at`` that can be honoured: now + device latency + one block + margin."""
        block_s = self.speaker.block_frames / self.rate
        return time.monotonic_ns() + int((self.speaker.output_latency_s + block_s + margin_s) * NS)

    def to_device_rate(self, pcm: np.ndarray, sample_rate: int) -> np.ndarray:
        """``pcm`` resampled to the speaker's rate (int16); callers may do this ahead of ``schedule``."""
        pcm = np.asarray(pcm, dtype=np.int16)
        if sample_rate == self.rate or not pcm.size:
            return pcm
        import soxr

        return np.clip(np.round(soxr.resample(pcm.astype(np.float32), sample_rate, self.rate)),
                       -32768, 32767).astype(np.int16)

    def schedule(self, utterance_id: str, pcm: np.ndarray, sample_rate: int, play_at_ns: int,
                 on_start: Callable[[str, int], None] | None = None,
                 on_done: Callable[[str, str, str], None] | None = None,
                 device_pcm: np.ndarray | None = None) -> None:
        """Queue ``pcm`` to start leaving the speaker at ``play_at_ns`` (after what is queued).

        ``on_start(utterance_id, start_ns)`` and ``on_done(utterance_id, status, detail)`` with
        status ``finished`` or ``interrupted`` are called when that happens at the speaker.
        ``device_pcm``: ``pcm`` already passed through ``to_device_rate`` (skips the resampling).
        """
        if device_pcm is None:
            device_pcm = self.to_device_rate(pcm, sample_rate)
        item = _Item(utterance_id, device_pcm, sample_rate, play_at_ns, on_start, on_done)
        with self._lock:
            self._queue.append(item)

    def stop(self, detail: str = "stopped") -> int:
        """Silence now and drop everything queued; returns the ``monotonic_ns`` of the request.

        Everything queued or still sounding is reported ``interrupted`` with ``detail``. What is
        scheduled after this call plays normally.
        """
        now = time.monotonic_ns()
        with self._lock:
            self._holds += 1  # ``_render`` plays silence (and advances nothing) until the cut is done
        # Not under ``_lock``: a PortAudio speaker discards by closing its stream, which waits for
        # a running callback to return, and that callback (``_render``) takes ``_lock``.
        try:
            silent_from = self.speaker.discard(self._fade_s)
        except Exception:  # noqa: BLE001 - a dying device: what it held plays out or is lost with it
            log.exception("speaker discard failed")
            silent_from = None
        with self._lock:
            self._holds -= 1
            head = self._queue[0] if self._queue and self._queue[0].start_ns is not None else None
            sounding = [i for i in self._started_items if not i.done_sent and i.status != "interrupted"
                        and (i.stopped_at or i.start_ns + len(i.pcm) * NS // self.rate) > now]
            if silent_from is None:
                # The device plays what it holds: fade the playing item in the next block
                # (``_render`` reports it), let items it holds in full finish.
                if head is not None:
                    self._fading = head
                    head.status, head.detail = "interrupted", detail
                sounding = []
            else:
                self.stops.append((now, silent_from))
            for item in sounding:
                item.status, item.detail, item.stopped_at = "interrupted", detail, silent_from
                self._emit(silent_from, self._done(item))
            for item in self._queue:
                if item is head or item in sounding:
                    continue
                item.status, item.detail = "interrupted", detail
                self._emit(now, self._done(item))
            self._queue.clear()
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
            if self._holds:
                return out
            pos = 0
            if self._fading is not None:
                pos = self._fade_out(out, leave_ns)
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

    def _fade_out(self, out: np.ndarray, leave_ns: int) -> int:
        """Lock held: fade the stopped item into ``out``, report it; returns samples used."""
        item, self._fading = self._fading, None
        tail = item.pcm[item.offset:item.offset + min(self._fade, len(out))].astype(np.float32)
        ramp = np.linspace(1.0, 0.0, len(tail), endpoint=False, dtype=np.float32)
        out[:len(tail)] = (tail * ramp).astype(np.int16)
        item.stopped_at = leave_ns + len(tail) * NS // self.rate
        self._emit(item.stopped_at, self._done(item))
        self.stops.append((item.stopped_at - len(tail) * NS // self.rate, item.stopped_at))
        return len(tail)

    def _started(self, item: _Item) -> Callable[[], None]:
        def call() -> None:
            if item.on_start is not None:
                item.on_start(item.utterance_id, item.start_ns)
        return call

    def _done(self, item: _Item) -> Callable[[], None]:
        def call() -> None:
            if item.done_sent:  # a stop reported it already; this is its stale "finished" event
                return
            item.done_sent = True
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
