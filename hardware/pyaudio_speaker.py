"""The real speaker through PyAudio (PortAudio), chosen by device name or index.

PortAudio's callback reports when the buffer it asks for reaches the DAC
(``output_buffer_dac_time``, in the stream's clock); the gap to ``current_time`` is added to
``monotonic_ns`` read in the callback, which gives each block's leave time on our clock and
compensates the device's output latency. A watchdog reopens the device when it goes away
(USB speaker unplugged, sound server restarted): callbacks stop coming or the stream dies.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from .speaker import Source, Speaker

log = logging.getLogger(__name__)


class DeviceNotFound(RuntimeError):
    """No output device matches the configured name or index."""


class PyAudioSpeaker(Speaker):
    """PortAudio output with a pull callback and reopen-on-loss."""

    def __init__(self, device: str | int | None = None, sample_rate: int = 48000, block_frames: int = 480,
                 reopen_after_s: float = 0.5, retry_every_s: float = 1.0) -> None:
        try:
            import pyaudio  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("the speaker needs the voice extra (pip install 'embodied-assistant[voice]') "
                              "and apt-get install portaudio19-dev") from exc
        self.device = device
        self.sample_rate = sample_rate
        self.block_frames = block_frames
        self.reopen_after_s = reopen_after_s
        self.retry_every_s = retry_every_s
        self.underruns = 0
        self.reopened = 0
        self._pa = None
        self._stream = None
        self._source: Source | None = None
        self._last_callback_ns = 0
        self._latency_s = 0.0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        # Held for a whole close-and-reopen, so the watchdog and discard() never reopen twice.
        self._device_lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self.last_error = ""
        """Why the device could not be opened last time; empty once it plays."""
        self._failing = False  # a failure was logged: the retries stay quiet until it works

    @property
    def output_latency_s(self) -> float:
        return self._latency_s

    def find_device(self, pa) -> int:
        """Index of the configured output device (exact name first, then a substring)."""
        outputs = [(i, pa.get_device_info_by_index(i)) for i in range(pa.get_device_count())]
        outputs = [(i, d) for i, d in outputs if d["maxOutputChannels"] > 0]
        if self.device is None:
            return int(pa.get_default_output_device_info()["index"])
        if isinstance(self.device, int):
            if any(i == self.device for i, _ in outputs):
                return self.device
        else:
            for match in (lambda n: n == self.device, lambda n: self.device.lower() in n.lower()):
                for i, d in outputs:
                    if match(d["name"]):
                        return i
        names = ", ".join(f"{i}: {d['name']}" for i, d in outputs) or "none"
        raise DeviceNotFound(f"no output device {self.device!r}; outputs are: {names}")

    def start(self, source: Source) -> None:
        """Open the device and play. A device that is not there (yet) is not fatal: it is
        retried every ``retry_every_s`` (``available`` is false, ``last_error`` says why)."""
        self._source = source
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001 - not plugged in yet, sound server not up yet...
            self.last_error = str(exc)
            self._failing = True
            log.error("speaker unavailable: %s; retrying every %.1f s", exc, self.retry_every_s)
        self._watchdog = threading.Thread(target=self._watch, name="speaker-watchdog", daemon=True)
        self._watchdog.start()

    def _open(self) -> None:
        import pyaudio

        with self._lock:
            from .portaudio_quiet import quiet

            quiet()
            self._pa = pyaudio.PyAudio()  # a fresh PortAudio instance re-lists devices
            try:
                index = self._index = self.find_device(self._pa)
                self._stream = self._open_stream(self._pa, index)
            except Exception:
                self._pa.terminate()
                self._pa = None
                raise
            self._latency_s = self._stream.get_output_latency()
            self._last_callback_ns = time.monotonic_ns()
            log.info("speaker open: device %s at %d Hz, latency %.1f ms", index, self.sample_rate,
                     self._latency_s * 1e3)

    def _open_stream(self, pa, index: int):
        import pyaudio

        return pa.open(format=pyaudio.paInt16, channels=1, rate=self.sample_rate, output=True,
                       output_device_index=index, frames_per_buffer=self.block_frames,
                       stream_callback=self._callback)

    def discard(self, fade_s: float = 0.002) -> int | None:
        """Drop what PortAudio and the sound server hold, now.

        PortAudio has no call to flush an output stream, but closing one discards its pending
        buffers (``Pa_CloseStream`` aborts an active stream), so: close, note the time, and open a
        new stream on the same device. There is no fade: the cut is immediate.
        """
        with self._device_lock:
            with self._lock:
                stream, pa, index = self._stream, self._pa, getattr(self, "_index", None)
            if stream is None or pa is None or index is None:
                return None
            try:
                stream.close()
            except Exception as exc:  # noqa: BLE001 - a dead device: the watchdog reopens it
                log.debug("closing speaker stream: %s", exc)
            silent_ns = time.monotonic_ns()
            try:
                new = self._open_stream(pa, index)
            except Exception as exc:  # noqa: BLE001
                log.warning("speaker reopen after stop failed: %s; the watchdog retries", exc)
                new = None
            with self._lock:
                self._stream = new
                self._last_callback_ns = time.monotonic_ns()
            return silent_ns

    def _callback(self, in_data, frames, time_info, status):
        import pyaudio

        now = time.monotonic_ns()
        self._last_callback_ns = now
        if status & pyaudio.paOutputUnderflow:
            self.underruns += 1
        dac, current = time_info.get("output_buffer_dac_time", 0.0), time_info.get("current_time", 0.0)
        ahead = dac - current if dac > 0 and current > 0 and 0 <= dac - current < 1.0 else self._latency_s
        block = self._source(frames, now + int(ahead * 1e9))
        return (np.ascontiguousarray(block, dtype="<i2").tobytes(), pyaudio.paContinue)

    def _close_stream(self) -> None:
        with self._lock:
            stream, pa, self._stream, self._pa = self._stream, self._pa, None, None
        for step in (lambda: stream and stream.close(), lambda: pa and pa.terminate()):
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - closing a dead device may fail any way
                log.debug("closing speaker: %s", exc)

    @property
    def available(self) -> bool:
        return self._healthy()

    def _healthy(self) -> bool:
        with self._lock:
            stream = self._stream
        if stream is None:
            return False
        try:
            active = stream.is_active()
        except Exception:  # noqa: BLE001
            return False
        return active and time.monotonic_ns() - self._last_callback_ns < self.reopen_after_s * 1e9

    def _watch(self) -> None:
        # The device lock is held for one attempt, never across the wait between attempts: a stop
        # (``discard``) during an outage must not block until the device is back.
        while not self._stop.wait(0.1):
            with self._device_lock:
                if self._healthy():
                    continue
                if not self._failing and self._stream is not None:
                    log.warning("speaker lost (no audio callback for %.1f s); reopening", self.reopen_after_s)
                self._close_stream()
                try:
                    self._open()
                except Exception as exc:  # noqa: BLE001 - keep trying until the device is back
                    self.last_error = str(exc)
                    if not self._failing:  # one line per outage, not one per retry
                        log.error("speaker unavailable: %s; retrying every %.1f s", exc, self.retry_every_s)
                        self._failing = True
                else:
                    self.reopened += 1
                    if self._failing:
                        log.warning("speaker back")
                    self._failing, self.last_error = False, ""
                    continue
            self._stop.wait(self.retry_every_s)

    def close(self) -> None:
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=2)
        self._close_stream()
