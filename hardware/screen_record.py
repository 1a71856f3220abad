"""Recording of the face to MP4 (H.264 when available, else MPEG-4 Part 2) with the speech muxed in.

Video is constant frame rate: a frame lands in the slot of its display time, a late frame's
empty slots repeat the previous picture, two frames in one slot keep the newer. After each video
frame the audio track is written up to the same instant (utterance sound where some was
scheduled, silence elsewhere), and ``close`` ends both at the same time, so the two streams have
equal length whatever the utterances did.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

AUDIO_RATE = 48_000  # AAC frames are 1024 samples: 21 ms here, under one video frame
MAX_FILL_S = 5.0  # a longer stall is not filled frame by frame


def _resample(pcm: np.ndarray, rate: int, to: int) -> np.ndarray:
    x = np.asarray(pcm, dtype=np.float32) / 32768.0 if np.asarray(pcm).dtype == np.int16 else np.asarray(pcm, np.float32)
    if rate == to:
        return x
    try:
        import soxr

        return soxr.resample(x, rate, to).astype(np.float32)
    except ImportError:
        n = int(round(len(x) * to / rate))
        return np.interp(np.arange(n) * rate / to, np.arange(len(x)), x).astype(np.float32)


class VideoRecorder:
    """Writes shown frames and scheduled audio to ``path`` (MP4)."""

    def __init__(self, path: str | Path, fps: float = 30.0, crf: int = 23, preset: str = "veryfast"):
        import av

        self._av = av
        self.path = Path(path)
        self.fps = fps
        self.crf, self.preset = crf, preset
        self.codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._container = None
        self._t0: int | None = None
        self._slot = -1  # last video slot written
        self._last: np.ndarray | None = None
        self._pending: np.ndarray | None = None
        self._segments: list[tuple[int, np.ndarray]] = []  # (start sample from t0, float32 mono)
        self._audio_written = 0
        self.frames = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
        except OSError as exc:
            from .screen import ScreenError

            raise ScreenError(f"cannot write recording {self.path}: {exc.strerror}") from None

    def _open(self, frame: np.ndarray) -> None:
        av = self._av
        h, w = frame.shape[:2]
        self._container = av.open(str(self.path), "w")
        rate = Fraction(self.fps).limit_denominator(1001)
        vs = self._container.add_stream(self.codec, rate=rate)
        vs.width, vs.height = w - w % 2, h - h % 2
        vs.pix_fmt = "yuv420p"
        if self.codec == "libx264":
            vs.options = {"crf": str(self.crf), "preset": self.preset}
        else:
            vs.bit_rate = 4_000_000
        vs.codec_context.time_base = 1 / rate
        aus = self._container.add_stream("aac", rate=AUDIO_RATE)
        aus.layout = "mono"
        self._video, self._audio_stream = vs, aus
        log.info("recording %s: %s %dx%d at %.2f fps with AAC audio", self.path, self.codec, w, h, self.fps)

    def audio(self, pcm: np.ndarray, sample_rate: int, play_at_ns: int, utterance_id: str = "") -> None:
        """Schedule sound; sound before the recording started or already written is dropped."""
        x = _resample(pcm, sample_rate, AUDIO_RATE)
        if self._t0 is None:
            self._segments.append((play_at_ns, x))  # placed once the first frame fixes t0
            return
        self._segments.append((round((play_at_ns - self._t0) / 1e9 * AUDIO_RATE), x))

    def silence_from(self, at_ns: int) -> None:
        """Barge-in: drop the scheduled sound from monotonic ``at_ns`` on (it was never heard)."""
        if self._t0 is None:
            cuts = [round((at_ns - start) / 1e9 * AUDIO_RATE) for start, _ in self._segments]
        else:
            cut = round((at_ns - self._t0) / 1e9 * AUDIO_RATE)
            cuts = [cut - start for start, _ in self._segments]
        self._segments = [(start, x[:n]) for (start, x), n in zip(self._segments, cuts) if n > 0]

    def show(self, frame: np.ndarray, t_ns: int) -> None:
        if self._t0 is None:
            self._t0 = t_ns
            self._segments = [(round((at - t_ns) / 1e9 * AUDIO_RATE), x) for at, x in self._segments]
            self._open(frame)
        slot = int(round((t_ns - self._t0) / 1e9 * self.fps))
        if slot <= self._slot:
            self._pending = frame  # same slot again: the newer frame wins at the next write
            return
        if self._pending is not None:
            self._last, self._pending = self._pending, None
        gap = slot - self._slot - 1
        if gap > 0 and self._last is not None:
            for _ in range(min(gap, int(MAX_FILL_S * self.fps))):
                self._write(self._last)
        self._write(frame)
        self._last = frame

    def _write(self, frame: np.ndarray) -> None:
        av = self._av
        vs = self._video
        self._slot += 1
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[: vs.height, : vs.width]), format="bgr24")
        vf.pts = self._slot
        for packet in vs.encode(vf):
            self._container.mux(packet)
        self.frames += 1
        self._write_audio(round((self._slot + 1) / self.fps * AUDIO_RATE))

    def _write_audio(self, until: int) -> None:
        start = self._audio_written
        if until <= start:
            return
        buf = np.zeros(until - start, np.float32)
        keep = []
        for seg_start, x in self._segments:
            a, b = max(seg_start, start), min(seg_start + len(x), until)
            if b > a:
                buf[a - start:b - start] += x[a - seg_start:b - seg_start]
            if seg_start + len(x) > until:
                keep.append((seg_start, x))
        self._segments = keep
        af = self._av.AudioFrame.from_ndarray(np.clip(buf, -1, 1)[None, :], format="flt", layout="mono")
        af.sample_rate = AUDIO_RATE
        af.pts = start
        for packet in self._audio_stream.encode(af):
            self._container.mux(packet)
        self._audio_written = until

    def close(self) -> None:
        """Flush encoders and finish the file; both tracks end at the last frame's end."""
        if self._container is None:
            return
        if self._pending is not None:
            self._write(self._pending)
            self._pending = None
        for packet in self._video.encode(None):
            self._container.mux(packet)
        for packet in self._audio_stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._container = None
        log.info("recording %s closed: %d frames", self.path, self.frames)
