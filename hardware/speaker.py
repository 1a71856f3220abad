"""The speaker: a small interface, the simulated twin (a WAV sink that timestamps every block),
and the PyAudio device (in ``pyaudio_speaker``).

Audio is pulled, not pushed: a running speaker asks its source for each block, telling it the
``monotonic_ns`` at which the block's first sample will leave the speaker. The source (the
``Player``) can then place an utterance's first sample exactly at its ``play_at`` and knows the
playback position at any time. Speakers stream silence when nothing plays, so the device clock
never stops and there is no start-up latency before an utterance.

A device holds ``output_latency_s`` of audio it was handed but has not played yet. ``discard``
drops that (with a short fade against a click), as ``snd_pcm_drop`` does on ALSA, so a barge-in
silences the speaker at once instead of after the device's buffer has played out.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

#: ``source(frames, leave_ns)`` -> int16 array of ``frames`` samples; called once per block.
Source = Callable[[int, int], np.ndarray]


class Speaker(ABC):
    """An output device that plays mono int16 blocks pulled from a source."""

    sample_rate: int
    """Samples per second the device plays."""
    block_frames: int
    """Samples per block asked from the source."""
    underruns: int = 0
    """Blocks the source delivered too late (heard as a gap)."""
    reopened: int = 0
    """Times the device came back after it was lost."""

    @property
    def available(self) -> bool:
        """The device is there and playing (False while it is unplugged or being reopened)."""
        return True

    @abstractmethod
    def start(self, source: Source) -> None:
        """Start pulling blocks from ``source`` (on the speaker's own thread)."""

    @abstractmethod
    def close(self) -> None:
        """Stop and release the device."""

    @property
    @abstractmethod
    def output_latency_s(self) -> float:
        """Time from handing a block over to its first sample leaving the speaker."""

    def discard(self, fade_s: float = 0.002) -> int | None:
        """Drop audio handed over but not played yet, fading out over ``fade_s`` from now.

        Returns the ``monotonic_ns`` from which the speaker is silent, or ``None`` when the device
        cannot drop its buffer (what it holds then plays out). Blocks the source is rendering
        while this is called are cut too. Safe to call from any thread.
        """
        return None


class WavSinkSpeaker(Speaker):
    """Simulated speaker: paced in real time like a device, writes what it plays to a WAV file.

    Every block is recorded with the ``monotonic_ns`` at which its first sample "leaves the
    speaker"; ``timeline`` has ``(first sample index in the file, leave_ns)`` rows and is saved
    beside the WAV as ``<name>.times.npy`` on close. The device holds ``latency_s`` of audio,
    like a real one: blocks are asked for that long before they play, and stay in the device's
    buffer (where ``discard`` can still silence them) until they have played; only then are they
    written to the file. A late source is an underrun: the device re-anchors its clock (a gap in
    time, none in the file), as hardware does.

    ``device_node``: the speaker is plugged in while this file exists (as a sound card's device
    node does). While it is missing the device asks for no audio and plays none, and what it
    held is lost; when the file is back it starts again with a fresh clock (``reopened``).
    """

    def __init__(self, path: str | Path, sample_rate: int = 24000, block_frames: int = 120,
                 latency_s: float = 0.010, device_node: str | Path | None = None) -> None:
        import soundfile as sf

        self.device_node = Path(device_node) if device_node else None
        self._present = True
        self.reopened = 0
        self.path = Path(path)
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.latency_s = latency_s
        self.underruns = 0
        self.late_silent = 0
        """Late wake-ups while the device played silence: re-anchored like an underrun, but nothing was
        heard missing (a loaded machine's timer jitter against the 10 ms buffer; not counted as underruns)."""
        self._audible = False  # the last block held sound
        self._file = sf.SoundFile(self.path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16")
        # The block time line, run-length coded: [first sample, leave_ns, blocks, block length] per
        # run of blocks on one clock (a new run after an underrun or an unplug). One row per block
        # was ~130 B a block, 0.8 MiB a minute at 48 kHz: a soak saw it as a leak.
        self._runs: list[list[int]] = []
        self._written = 0
        self._held: deque[tuple[int, np.ndarray]] = deque()  # (leave_ns, block) handed over, not yet played
        self._cuts = 0  # discard() calls so far: a block rendered across one is cut as well
        self._cut: tuple[int, int] = (0, 0)  # (fade start ns, silent from ns) of the latest discard
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def output_latency_s(self) -> float:
        return self.latency_s

    @property
    def available(self) -> bool:
        return self._present

    def start(self, source: Source) -> None:
        self._thread = threading.Thread(target=self._run, args=(source,), name="wav-speaker", daemon=True)
        self._thread.start()

    def _unplugged(self) -> None:
        """The device node is gone: hold nothing, play nothing, until it is back."""
        self._present = False
        with self._lock:
            self._held.clear()  # the audio in a vanished device's buffer is never heard
        lost = time.monotonic()
        log.error("speaker %s is gone (unplugged?); waiting for it", self.device_node)
        while not self._stop.wait(0.1):
            if self.device_node.exists():
                self.reopened += 1
                log.warning("speaker %s back after %.1f s", self.device_node, time.monotonic() - lost)
                self._present = True
                return

    def _run(self, source: Source) -> None:
        lat_ns = int(self.latency_s * 1e9)
        anchor = time.monotonic_ns() + lat_ns  # leave time of block 0
        j = 0
        checked = 0
        while not self._stop.is_set():
            if self.device_node is not None and time.monotonic_ns() - checked > 20_000_000:
                checked = time.monotonic_ns()
                if not self.device_node.exists():
                    self._unplugged()
                    anchor, j = time.monotonic_ns() + lat_ns, 0
                    continue
            leave = anchor + (j * self.block_frames * 1_000_000_000) // self.sample_rate
            wake = leave - lat_ns
            now = time.monotonic_ns()
            if wake > now:
                time.sleep((wake - now) / 1e9)
                now = time.monotonic_ns()
            if now > leave:
                # The buffer ran dry before this block was ready: restart the clock from now. Only a
                # gap in sound is an underrun a listener hears; one in silence is a late wake-up.
                if self._audible:
                    self.underruns += 1
                else:
                    self.late_silent += 1
                anchor, j = now + lat_ns, 0
                leave = anchor
            cuts = self._cuts
            block = np.array(source(self.block_frames, leave), dtype=np.int16)
            self._audible = bool(block.any())
            with self._lock:
                if cuts != self._cuts:
                    self._fade_out(leave, block, *self._cut)  # rendered while a discard happened
                self._held.append((leave, block))
                self._commit(time.monotonic_ns())
            j += 1

    def _commit(self, now_ns: int) -> None:
        """Write the held blocks that have finished leaving the speaker (lock held)."""
        while self._held:
            leave, block = self._held[0]
            if leave + len(block) * 1_000_000_000 // self.sample_rate > now_ns:
                break
            self._held.popleft()
            run = self._runs[-1] if self._runs else None
            if run is not None and len(block) == run[3] and leave == run[1] + (run[2] * run[3] * 1_000_000_000) // self.sample_rate:
                run[2] += 1
            else:
                self._runs.append([self._written, leave, 1, len(block)])
            self._file.write(block)
            self._written += len(block)

    def _fade_out(self, leave_ns: int, block: np.ndarray, fade_from: int, silent_from: int) -> None:
        """Scale ``block`` in place: 1 before ``fade_from``, a linear ramp, 0 from ``silent_from``."""
        t = leave_ns + (np.arange(len(block), dtype=np.int64) * 1_000_000_000) // self.sample_rate
        if t[-1] < fade_from:
            return
        gain = np.clip((silent_from - t) / max(1, silent_from - fade_from), 0.0, 1.0)
        block[:] = np.round(block * gain).astype(np.int16)

    def discard(self, fade_s: float = 0.002) -> int:
        """Silence what the device holds from now on (after a ``fade_s`` ramp); see ``Speaker``."""
        with self._lock:
            now = time.monotonic_ns()
            cut = (now, now + int(fade_s * 1e9))
            for leave, block in self._held:
                self._fade_out(leave, block, *cut)
            self._cut = cut
            self._cuts += 1
        return cut[1]

    def _rows(self) -> np.ndarray:
        """``(first sample index, leave_ns)`` per block, from the runs (lock held)."""
        parts = [np.zeros((0, 2), np.int64)]
        for start, leave, count, length in self._runs:
            k = np.arange(count, dtype=np.int64)
            parts.append(np.stack([start + k * length, leave + (k * length * 1_000_000_000) // self.sample_rate], axis=1))
        return np.concatenate(parts)

    @property
    def timeline(self) -> np.ndarray:
        """``(first sample index, leave_ns)`` per block played so far, int64."""
        with self._lock:
            return self._rows()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        with self._lock:
            self._commit(2**62)  # the device plays out what it holds
            self._file.close()
            np.save(self.path.with_suffix(".times.npy"), self._rows())
        if self.underruns:
            log.warning("wav speaker: %d underruns: the simulated card's %.0f ms buffer ran dry while sound played "
                        "(the machine was too busy to feed it in time; see docs/devices.md)", self.underruns, self.latency_s * 1000)
        if self.late_silent:
            log.debug("wav speaker: %d late wake-ups in silence (no sound was missing)", self.late_silent)


def read_recording(path: str | Path) -> tuple[np.ndarray, int, np.ndarray]:
    """A WAV twin's recording: ``(samples, sample_rate, leave_ns of every sample)``."""
    import soundfile as sf

    pcm, rate = sf.read(Path(path), dtype="int16")
    rows = np.load(Path(path).with_suffix(".times.npy"))
    times = np.zeros(len(pcm), dtype=np.int64)
    bounds = list(rows[:, 0]) + [len(pcm)]
    for (start, leave), end in zip(rows, bounds[1:]):
        times[start:end] = leave + (np.arange(end - start) * 1_000_000_000) // rate
    return pcm, rate, times
