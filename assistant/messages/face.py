"""Renderer messages: face landmarks for robot faces and the renderer's statistics."""

from __future__ import annotations



from .base import Message, message


@message("face.landmarks")
class FaceLandmarks(Message, frozen=True):
    """Landmarks of the displayed face, every frame."""

    PAYLOADS = ("points",)
    PAYLOAD_MAX = {"points": 1 << 20}

    def problem(self) -> str | None:
        rows, cols = self.shape
        if not (0 <= rows <= 100_000 and 0 <= cols <= 3) or len(self.points) != rows * cols * 4:
            return f"points hold {len(self.points)} bytes, shape {self.shape} needs {max(0, rows * cols * 4)}"
        return None

    frame: int
    """Frame number since the renderer started."""
    shown_ns: int
    """When the frame is shown."""
    shape: tuple[int, int]
    """Shape of ``points`` (n_points, 2)."""
    utterance_id: str = ""
    """Utterance being spoken, empty when idle."""
    points: bytes = b""
    """float32 little-endian array of (x, y) in output-image pixels."""
    mouth_open: float = 0.0
    """Inner-lip opening in inter-ocular units (0 = closed)."""
    audio_s: float = 0.0
    """Sound time (seconds from the utterance's first sample) whose mouth this frame shows; 0 when idle."""


@message("renderer.stats")
class RendererStats(Message, frozen=True):
    """Renderer health, about once a second."""

    fps: float
    """Frames shown per second over the last interval."""
    av_offset_ms: float
    """Mouth minus sound time of the last utterance's frames (positive: mouth late)."""
    dropped_frames: int
    """Frames dropped since start."""
    frames: int
    """Frames shown since start."""
    width: int = 0
    """Output width."""
    height: int = 0
    """Output height."""
    driver: str = ""
    """Mouth driver in use."""
    av_offset_ms_p95: float = 0.0
    """95th percentile of the absolute A/V offset over the last interval's speech frames (0: no speech)."""
    render_ms: float = 0.0
    """Mean time to render a frame over the last interval."""
    record_dropped: int = 0
    """Frames the MP4 recorder could not encode in time since start (their slots repeat the previous picture)."""


