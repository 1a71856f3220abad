"""Vision messages: faces in view, people arriving and leaving, exposure and preview."""

from __future__ import annotations

from typing import Literal

import msgspec

from .base import Message, message


class Face(msgspec.Struct, frozen=True):
    """One tracked face in a camera frame."""

    track_id: int
    """Stable id while the face stays tracked."""
    box: tuple[float, float, float, float]
    """x, y, width, height in pixels of the frame."""
    distance_m: float
    """Distance estimated from the face size."""
    engaged: bool = False
    """Whether this person is engaged with the kiosk (close, facing it)."""
    identity: str = ""
    """Enrolled name when recognised, empty when unknown."""
    similarity: float = 0.0
    """Recognition similarity to ``identity`` (or to the best match when unknown)."""
    luminance: float = 0.0
    """Mean luminance of the face region, 0..255."""


@message("vision.faces")
class Faces(Message, frozen=True):
    """Faces in one analysed frame (at >= 10 Hz)."""

    frame_ns: int
    """Capture time of the frame."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    faces: list[Face] = []
    """Faces found, engaged ones first."""


@message("vision.person")
class Person(Message, frozen=True):
    """A person arrived, left, engaged, disengaged or was recognised."""

    event: Literal["arrived", "left", "engaged", "disengaged", "recognised"]
    """What happened."""
    track_id: int
    """Track id of the face."""
    identity: str = ""
    """Enrolled name when known."""
    distance_m: float = 0.0
    """Distance at the time of the event."""


@message("vision.exposure")
class Exposure(Message, frozen=True):
    """State of the auto-exposure loop."""

    exposure: float
    """Exposure time in camera units."""
    gain: float
    """Gain in camera units."""
    metered_luminance: float
    """Luminance of the metered region, 0..255."""
    target_luminance: float
    """Target luminance."""
    mode: Literal["face", "centre", "search", "manual", "camera", "global"]
    """What is metered: ``face`` (tracked faces), ``centre`` (no face: centre-weighted), ``search``
    (no face: the backlight-aware meter that exposes for where faces would be), ``global`` (mean
    of the frame, the baseline), or who sets it (``manual`` config, ``camera`` firmware)."""


@message("vision.preview")
class Preview(Message, frozen=True):
    """Low-rate JPEG preview for the status page."""

    PAYLOADS = ("jpeg",)
    PAYLOAD_MAX = {"jpeg": 4 << 20}

    def problem(self) -> str | None:
        if self.jpeg and not self.jpeg.startswith(b"\xff\xd8"):
            return "jpeg does not start like a JPEG"
        return None

    frame_ns: int
    """Capture time."""
    jpeg: bytes = b""
    """JPEG image."""


@message("vision.speaker")
class Speaker(Message, frozen=True):
    """The active speaker changed: whose mouth moves with the sound the microphone hears.

    Published on a change only (with hysteresis: a cough or a nod does not flip it). ``track_id``
    is -1 when the speaker went out of view.
    """

    track_id: int
    """Track id of the face now speaking (as in ``vision.faces``), -1 for nobody in view."""
    since_ns: int
    """Monotonic time (audio clock) from which this face has been the speaker."""
    identity: str = ""
    """Enrolled name when the face is recognised, empty when unknown."""
    confidence: float = 0.0
    """How clearly this face's mouth follows the sound, 0..1 (its audio-visual sync score)."""
    previous_track_id: int = -1
    """The speaker before, -1 when none."""
