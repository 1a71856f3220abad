"""Visitor sessions from ``vision.person`` events: who is here, who is engaged, when to greet.

A visitor is greeted once they engage (close and facing the kiosk), by name when recognised.
Recognition may come a moment after engagement, so an unknown visitor's polite greeting waits
``greet_wait_ns`` for it. A visitor who was greeted gets a goodbye when they leave. The brain
listens only while someone is engaged; with several engaged, it talks to the one who engaged first,
unless the camera says who is speaking (``vision.speaker``): then each utterance belongs to the
face whose mouth moved with it, so names, mail and messages go to the right person and an unknown
second visitor never gets the first one's mail.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Visitor:
    track_id: int
    identity: str = ""
    engaged: bool = False
    engaged_since_ns: int = 0
    greeted: bool = False
    greet_due_ns: int = 0
    """When a polite (unnamed) greeting is due; 0 when none is scheduled."""
    offered: set[str] = field(default_factory=set)
    """Mail ids already read out automatically during this visit (never repeated unasked)."""


@dataclass(frozen=True)
class SessionEvent:
    kind: str
    """``greet`` (say hello), ``recognised`` (known after being greeted), ``goodbye`` (greeted and left), ``left`` (never greeted)."""
    visitor: Visitor


class Sessions:
    """Visitors by camera track id; fed events, returns what the conversation should do about them."""

    def __init__(self, greet_wait_ns: int) -> None:
        self.greet_wait_ns = greet_wait_ns
        self.visitors: dict[int, Visitor] = {}
        self.speakers: list[tuple[int, int]] = []
        """``vision.speaker`` history: (since_ns, track id), oldest first, the last 64."""

    def speaker(self, track_id: int, since_ns: int) -> None:
        """The camera saw ``track_id`` start speaking at ``since_ns`` (-1: the speaker left the view)."""
        self.speakers = [(t, k) for t, k in self.speakers if t < since_ns][-63:] + [(since_ns, track_id)]

    def speaker_during(self, start_ns: int, end_ns: int) -> Visitor | None:
        """Who spoke most of ``[start_ns, end_ns]`` by the camera's speaker history, or None when the
        history does not cover it (no speaker known then, or it was out of view)."""
        if not self.speakers or end_ns <= start_ns:
            return None
        share: dict[int, int] = {}
        bounds = self.speakers[1:] + [(max(end_ns, self.speakers[-1][0]) + 1, -1)]
        for (since, track), (until, _) in zip(self.speakers, bounds):
            overlap = min(until, end_ns) - max(since, start_ns)
            if overlap > 0 and track >= 0:
                share[track] = share.get(track, 0) + overlap
        if not share:
            return None
        track = max(share, key=share.__getitem__)
        # A face the brain never heard of (no vision.person yet) is someone unknown, never someone else.
        return self.visitors.get(track) or Visitor(track)

    def event(self, kind: str, track_id: int, identity: str, now_ns: int) -> list[SessionEvent]:
        if kind == "left":
            v = self.visitors.pop(track_id, None)
            if v is None:
                return []
            return [SessionEvent("goodbye" if v.greeted else "left", v)]
        # Events for a track we never saw arrive (brain restarted mid-visit) create the visitor.
        v = self.visitors.setdefault(track_id, Visitor(track_id))
        out: list[SessionEvent] = []
        if identity and identity != v.identity:
            v.identity = identity
            if v.greeted:
                out.append(SessionEvent("recognised", v))
        if kind == "engaged" and not v.engaged:
            v.engaged, v.engaged_since_ns = True, now_ns
        elif kind == "disengaged":
            v.engaged = False
        if v.engaged and not v.greeted:
            if v.identity:
                out.append(self._greet(v))
            elif not v.greet_due_ns:
                v.greet_due_ns = now_ns + self.greet_wait_ns
        return out

    def tick(self, now_ns: int) -> list[SessionEvent]:
        """Polite greetings whose wait for recognition ran out."""
        return [self._greet(v) for v in list(self.visitors.values()) if v.engaged and not v.greeted and v.greet_due_ns and now_ns >= v.greet_due_ns]

    def _greet(self, v: Visitor) -> SessionEvent:
        v.greeted, v.greet_due_ns = True, 0
        return SessionEvent("greet", v)

    @property
    def listening(self) -> bool:
        """Someone is engaged: speech is meant for us (no wake word needed)."""
        return any(v.engaged for v in self.visitors.values())

    @property
    def present(self) -> bool:
        return bool(self.visitors)

    def active(self) -> Visitor | None:
        """Who the conversation is with: the engaged visitor who engaged first."""
        engaged = [v for v in self.visitors.values() if v.engaged]
        return min(engaged, key=lambda v: v.engaged_since_ns) if engaged else None

    def engaged_known(self) -> list[Visitor]:
        return [v for v in self.visitors.values() if v.engaged and v.identity and v.greeted]
