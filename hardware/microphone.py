"""The microphone: 16 kHz mono int16 chunks stamped with the monotonic time of their first sample.

Two implementations behind one small interface, picked by config (``hearing.mic``):

- ``PyAudioMicrophone``: a real capture device through PortAudio at the device's own rate,
  downmixed and resampled to 16 kHz with soxr. It survives the device vanishing: a read or open
  error closes everything, and it retries (re-initialising PortAudio so the device list is fresh)
  until the device is back.
- ``FileMicrophone``: the simulated twin. A WAV/FLAC file streamed in real time with silence
  around it, then silence for ever, as a real microphone in a quiet room would. A scripted
  visitor can also speak into the simulated room on cue: audio files dropped into ``cue_dir``
  are heard from the time their name gives (see ``FileMicrophone``), as ``paplay`` into a
  PulseAudio microphone would feed a real one.

Both call ``on_chunk(chunk)`` from their own capture thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

RATE = 16_000
"""Sample rate of every chunk a microphone delivers."""


class MicrophoneError(Exception):
    """The microphone cannot be used as configured; the message says what to change."""


class AudioFileError(MicrophoneError):
    """An audio file is missing, empty or malformed."""


@dataclass(frozen=True)
class AudioChunk:
    """A piece of captured audio."""

    pcm: np.ndarray
    """int16 mono samples at ``RATE``."""
    t0_ns: int
    """``monotonic_ns`` when the first sample reached the microphone."""


def to_int16_mono(audio: np.ndarray, rate: int, out_rate: int = RATE) -> np.ndarray:
    """Downmix (mean of channels) and resample with soxr; returns int16 at ``out_rate``."""
    import soxr

    x = np.asarray(audio)
    if x.dtype == np.int16 and x.ndim == 1 and rate == out_rate:
        return x
    if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
    x = x.astype(np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != out_rate:
        x = soxr.resample(x, rate, out_rate)
    return (np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)


def load_audio(path: str | Path, out_rate: int = RATE) -> np.ndarray:
    """Read a WAV/FLAC (anything libsndfile reads) as int16 mono at ``out_rate``.

    Raises ``AudioFileError`` naming the file and the problem for a missing, empty or malformed file.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such audio file")
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        raise AudioFileError(f"{path}: not a readable audio file ({exc}); expected WAV or FLAC with a data chunk") from None
    if not 4000 <= rate <= 192_000:
        raise AudioFileError(f"{path}: implausible sample rate {rate} Hz (corrupt header?); expected 4 kHz to 192 kHz")
    if audio.size == 0:
        raise AudioFileError(f"{path}: the audio file holds no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioFileError(f"{path}: the audio file holds non-finite samples")
    return to_int16_mono(audio, rate, out_rate)


class Microphone:
    """Interface: ``start(on_chunk)`` begins capture on a thread of its own; ``stop()`` ends it.

    ``speaker_play`` / ``speaker_stop`` tell the microphone what the assistant's speaker plays: only
    the simulated room hears it (``FileMicrophone``); for a real device they do nothing.
    """

    name = "microphone"

    def __init__(self) -> None:
        self.reopens = 0
        """How many times the device came back after being lost."""
        self.errors = 0
        """Capture errors seen (device lost, open failed)."""
        self.on_text: Callable[[str], None] | None = None
        """Called (on one of the microphone's threads) with each line a visitor typed, by a microphone that has
        a text box (the kiosk page's, ``WebMicrophone``); None: typed lines are dropped."""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def speaker_play(self, pcm16k: np.ndarray, at_ns: int) -> None:
        """The assistant's speaker plays ``pcm16k`` (16 kHz) from ``at_ns``; a real microphone hears the real one."""

    def speaker_stop(self, at_ns: int) -> None:
        """The assistant's speaker stops at ``at_ns``."""

    @property
    def available(self) -> bool:
        """The device is there and capturing."""
        return True

    def start(self, on_chunk: Callable[[AudioChunk], None]) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(on_chunk,), name=f"mic-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self, on_chunk: Callable[[AudioChunk], None]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class FileMicrophone(Microphone):
    """Simulated microphone: ``path`` played in real time after ``lead_s`` of silence, then silence
    (``path=None``: silence only).

    ``start_at_ns`` pins when the stream's first sample is "captured" (tests use it to line up a
    played reply with the file); by default, when ``start`` is called.

    ``cue_dir``: a folder watched while the microphone runs. A file ``<monotonic_ns>_<name>.wav``
    that appears there (write it elsewhere and rename it in, so it is never read half-written) is
    spoken into the room from that time, or at once when the time has passed or the name has no
    time. Each file is heard once; an unreadable one is logged and counted in ``errors``.

    ``device_node``: the microphone is plugged in while this file exists (as a sound card's
    device node does). While it is missing nothing is captured (that audio is lost, as with a
    real device) and the capture checks again every ``retry_s``; its return counts in ``reopens``.
    """

    name = "file"

    def __init__(self, path: str | Path | None, *, lead_s: float = 0.5, chunk_ms: int = 20,
                 start_at_ns: int = 0, noise_dbfs: float = -70.0, speaker_leak_db: float | None = None,
                 cue_dir: str | Path | None = None, device_node: str | Path | None = None,
                 retry_s: float = 0.5) -> None:
        super().__init__()
        self.device_node = Path(device_node) if device_node else None
        self.retry_s = retry_s
        self._gone = False
        self.cue_dir = Path(cue_dir) if cue_dir else None
        self._cued: list[tuple[int, np.ndarray]] = []  # (start_ns, pcm) spoken into the room on cue
        self._cue_seen: set[str] = set()
        self._cue_next = 0.0
        self.speaker_leak_db = speaker_leak_db
        self._played: list[tuple[int, np.ndarray, np.ndarray]] = []  # (start_ns, dry, leaked)
        self._played_lock = threading.Lock()
        self.path = Path(path) if path is not None else None
        # None: a quiet room. A malformed file fails here, with a clear error.
        self.audio = load_audio(path) if path is not None else np.zeros(0, dtype=np.int16)
        self.lead = int(lead_s * RATE)
        self.chunk = int(RATE * chunk_ms / 1000)
        self.start_at_ns = start_at_ns
        # A little noise: a real room is never digitally silent, and the VAD's noise floor needs it.
        self.noise_rms = 32768.0 * 10 ** (noise_dbfs / 20)

    # --- the simulated room's speaker (the voice's replies leaking into the microphone) ------
    def speaker_play(self, pcm16k: np.ndarray, at_ns: int) -> None:
        """The speaker in the simulated room plays ``pcm16k`` from ``at_ns``; ignored without a speaker."""
        if self.speaker_leak_db is None:
            return
        from hardware.room import leak

        with self._played_lock:
            self._played.append((at_ns, pcm16k, leak(pcm16k, gain_db=self.speaker_leak_db)))

    def speaker_stop(self, at_ns: int) -> None:
        """The speaker stops at ``at_ns``; the room's reverberation still decays after it."""
        if self.speaker_leak_db is None:
            return
        from hardware.room import leak

        with self._played_lock:
            kept = []
            for start, dry, wet in self._played:
                n = max(0, (at_ns - start) * RATE // 1_000_000_000)
                if n < len(dry):
                    dry = dry[:n]
                    wet = leak(dry, gain_db=self.speaker_leak_db) if n else dry.astype(np.float32)
                kept.append((start, dry, wet))
            self._played = kept

    # --- a scripted visitor speaking on cue ------------------------------------------------------
    def _poll_cues(self, now_ns: int) -> None:
        """Pick up new cue files (at most ten times a second: a directory listing per chunk is waste)."""
        if self.cue_dir is None or time.monotonic() < self._cue_next:
            return
        self._cue_next = time.monotonic() + 0.1
        self._cued = [c for c in self._cued if c[0] + len(c[1]) * 1_000_000_000 // RATE >= now_ns]  # spoken: forget
        try:
            names = sorted(p.name for p in self.cue_dir.iterdir() if p.suffix.lower() in (".wav", ".flac"))
        except OSError:
            return  # the folder does not exist (yet): nothing cued
        for name in names:
            if name in self._cue_seen:
                continue
            self._cue_seen.add(name)
            head = name.partition("_")[0]
            at_ns = max(int(head), now_ns) if head.isdigit() else now_ns
            try:
                pcm = load_audio(self.cue_dir / name)
            except AudioFileError as exc:
                self.errors += 1
                log.error("cue ignored: %s", exc)
                continue
            log.info("cue %s: %.2f s of speech from %+.0f ms", name, len(pcm) / RATE, (at_ns - now_ns) / 1e6)
            self._cued.append((at_ns, pcm))

    def _sample(self, start: int, n: int, rng: np.random.Generator, t_ns: int = 0) -> np.ndarray:
        out = (rng.standard_normal(n) * self.noise_rms).astype(np.float32)
        a0, a1 = max(start - self.lead, 0), min(start + n - self.lead, len(self.audio))
        if a1 > a0:
            out[a0 + self.lead - start:a1 + self.lead - start] += self.audio[a0:a1]
        with self._played_lock:
            for p_start, _, wet in self._played:
                o = (t_ns - p_start) * RATE // 1_000_000_000  # offset of this chunk in the leak
                lo, hi = max(o, 0), min(o + n, len(wet))
                if hi > lo:
                    out[lo - o:hi - o] += wet[lo:hi]
        for c_start, pcm in self._cued:  # only the capture thread touches the cues: no lock
            o = (t_ns - c_start) * RATE // 1_000_000_000
            lo, hi = max(o, 0), min(o + n, len(pcm))
            if hi > lo:
                out[lo - o:hi - o] += pcm[lo:hi]
        return np.clip(out, -32768, 32767).astype(np.int16)

    def _run(self, on_chunk: Callable[[AudioChunk], None]) -> None:
        rng = np.random.default_rng(0)
        t0 = self.start_at_ns or time.monotonic_ns()
        pos = 0
        while not self._stop.is_set():
            t_chunk = t0 + pos * 1_000_000_000 // RATE
            # Deliver a chunk when its last sample has been "captured", as a real device would.
            wait = (t_chunk + self.chunk * 1_000_000_000 // RATE - time.monotonic_ns()) / 1e9
            if wait > 0 and self._stop.wait(wait):
                break
            if self.device_node is not None and not self.device_node.exists():
                pos = self._unplugged(t0)
                continue
            self._poll_cues(t_chunk)
            on_chunk(AudioChunk(self._sample(pos, self.chunk, rng, t_chunk), t_chunk))
            pos += self.chunk

    def _unplugged(self, t0: int) -> int:
        """Wait while the device node is missing; returns the stream position to go on from
        (the audio of the gap is lost, as with a real device)."""
        self.errors += 1
        self._gone = True
        lost = time.monotonic()
        log.error("microphone %s is gone (unplugged?); retrying every %.1f s", self.device_node, self.retry_s)
        while not self._stop.wait(self.retry_s):
            if self.device_node.exists():
                self._gone = False
                self.reopens += 1
                log.warning("microphone %s back after %.1f s", self.device_node, time.monotonic() - lost)
                break
        return (time.monotonic_ns() - t0) * RATE // 1_000_000_000 // self.chunk * self.chunk

    @property
    def available(self) -> bool:
        return not self._gone

    @property
    def duration_s(self) -> float:
        return (self.lead + len(self.audio)) / RATE


class PyAudioMicrophone(Microphone):
    """A PortAudio capture device, found by index or by (part of) its name."""

    name = "pyaudio"

    def __init__(self, device: str = "default", *, rate: int = 0, channels: int = 1,
                 chunk_ms: int = 20, retry_s: float = 0.5) -> None:
        super().__init__()
        try:
            import pyaudio  # noqa: F401
        except ImportError:
            raise MicrophoneError("pyaudio is not installed; pip install 'embodied-assistant[hearing]' (needs apt portaudio19-dev)") from None
        self.device = device
        self.rate = rate
        self.channels = channels
        self.chunk_ms = chunk_ms
        self.retry_s = retry_s
        self.connected = threading.Event()

    @property
    def available(self) -> bool:
        return self.connected.is_set()

    @staticmethod
    def find_device(pa, device: str) -> dict:
        """The device info for ``device`` (``default``, an index, or a name substring)."""
        inputs = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
        inputs = [d for d in inputs if d.get("maxInputChannels", 0) > 0]
        if device in ("", "default"):
            try:
                return pa.get_default_input_device_info()
            except OSError:
                pass
        elif device.isdigit():
            for d in inputs:
                if d["index"] == int(device):
                    return d
        else:
            for d in inputs:
                if device.lower() in d["name"].lower():
                    return d
        names = ", ".join(f"{d['index']}: {d['name']}" for d in inputs) or "none"
        raise MicrophoneError(f"no input device {device!r}; set hearing.mic_device to one of: {names}")

    def _open(self):
        import pyaudio

        from .portaudio_quiet import quiet

        quiet()
        pa = pyaudio.PyAudio()
        try:
            info = self.find_device(pa, self.device)
            rate = self.rate or int(info["defaultSampleRate"])
            channels = min(self.channels, int(info["maxInputChannels"])) or 1
            frames = max(1, rate * self.chunk_ms // 1000)
            stream = pa.open(format=pyaudio.paInt16, channels=channels, rate=rate, input=True,
                             input_device_index=int(info["index"]), frames_per_buffer=frames)
        except Exception:
            pa.terminate()
            raise
        return pa, stream, info, rate, channels, frames

    def _run(self, on_chunk: Callable[[AudioChunk], None]) -> None:
        import soxr

        lost_since = None
        while not self._stop.is_set():
            try:
                pa, stream, info, rate, channels, frames = self._open()
            except Exception as exc:  # noqa: BLE001 - any open failure means: not there (yet)
                self.errors += 1
                if lost_since is None:
                    lost_since = time.monotonic()
                    log.error("microphone %r unavailable (%s); retrying every %.1f s", self.device, exc, self.retry_s)
                self._stop.wait(self.retry_s)
                continue
            if lost_since is not None and self.errors:
                self.reopens += 1
                log.warning("microphone %r back after %.1f s", info["name"], time.monotonic() - lost_since)
            lost_since = None
            log.info("microphone %r open at %d Hz, %d channel(s)", info["name"], rate, channels)
            resampler = soxr.ResampleStream(rate, RATE, 1, dtype="float32") if rate != RATE else None
            latency_ns = int(stream.get_input_latency() * 1e9)
            captured = 0  # device samples read since open: timestamps follow the device clock
            t_open = None
            self.connected.set()
            try:
                while not self._stop.is_set():
                    data = stream.read(frames, exception_on_overflow=False)
                    now = time.monotonic_ns()
                    x = np.frombuffer(data, dtype=np.int16).reshape(-1, channels).astype(np.float32).mean(axis=1) / 32768.0
                    if t_open is None:
                        t_open = now - latency_ns - len(x) * 1_000_000_000 // rate
                    t0 = t_open + captured * 1_000_000_000 // rate
                    captured += len(x)
                    if resampler is not None:
                        x = resampler.resample_chunk(x)
                    if len(x):
                        on_chunk(AudioChunk((np.clip(x, -1, 1) * 32767).astype(np.int16), t0))
            except Exception as exc:  # noqa: BLE001 - the device vanished mid-stream
                self.errors += 1
                lost_since = time.monotonic()
                log.error("microphone %r lost (%s); retrying every %.1f s", info["name"], exc, self.retry_s)
            finally:
                self.connected.clear()
                for close in (stream.stop_stream, stream.close, pa.terminate):
                    try:
                        close()
                    except Exception:  # noqa: BLE001 - closing a dead device may fail too
                        pass
