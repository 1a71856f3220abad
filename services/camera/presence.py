"""Who is here: distance from face size, engagement with hysteresis, and the events the brain hears.

distance = focal_px x face_width_m / box_width_px (pinhole camera; ~10 % error across adults).
A visitor becomes engaged closer than ``engage_m`` and stays engaged until farther than
``release_m``; a gap between the two keeps a visitor who sways at the threshold from flapping.
At most ``max_engaged`` visitors are engaged: the ones already engaged keep their place, free
places go to the closest.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .detection import Track

if TYPE_CHECKING:
    from assistant.config import CameraSettings


class Presence:
    def __init__(self, settings: CameraSettings, *, width: int) -> None:
        # the section refuses engage_m >= release_m; this guards a section built some other way
        if settings.release_m < settings.engage_m:
            raise ValueError(f"release_m ({settings.release_m}) must be >= engage_m ({settings.engage_m})")
        self.focal_px = (width / 2) / math.tan(math.radians(settings.hfov_deg) / 2)
        self.face_width_m = settings.face_width_m
        self.engage_m = settings.engage_m
        self.release_m = settings.release_m
        self.max_engaged = settings.max_engaged
        self.announced: set[int] = set()

    def distance(self, box_width_px: float) -> float:
        return self.focal_px * self.face_width_m / max(box_width_px, 1.0)

    def update(self, live: list[Track], left: list[Track]) -> list[tuple[str, Track]]:
        """Update distances and engagement; return (event, track) pairs in the order they happened."""
        events: list[tuple[str, Track]] = []
        for t in live:
            d = self.distance(t.box[2])
            t.distance_m = d if t.distance_m == 0 else 0.7 * t.distance_m + 0.3 * d
            if t.id not in self.announced:
                self.announced.add(t.id)
                events.append(("arrived", t))
        keep = [t for t in live if t.engaged and t.distance_m <= self.release_m]
        fresh = sorted((t for t in live if not t.engaged and t.distance_m <= self.engage_m), key=lambda t: t.distance_m)
        engaged = keep[: self.max_engaged]
        engaged += fresh[: self.max_engaged - len(engaged)]
        chosen = {t.id for t in engaged}
        for t in live:
            now = t.id in chosen
            if now != t.engaged:
                t.engaged = now
                events.append(("engaged" if now else "disengaged", t))
        for t in left:
            if t.engaged:
                t.engaged = False
                events.append(("disengaged", t))
            self.announced.discard(t.id)
            events.append(("left", t))
        return events
