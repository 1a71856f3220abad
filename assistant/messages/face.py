"""Renderer messages: face landmarks for robot faces and the renderer's statistics."""

from __future__ import annotations



from .base import Message, message


@message("face.landmarks")
class FaceLandmarks(Message, frozen=True):
    """Landmarks of the displayed face, every frame."""

    PAYLOADS = ("points",)

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


