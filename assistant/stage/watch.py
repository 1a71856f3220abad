"""Watching the whole kiosk on the bus: what happened, who said what, and waiting for it.

``KioskWatch`` subscribes to everything, logs every message (``bus.log``), and keeps the facts a
scene director waits on and reports: services' states, people seen, transcripts, replies with
how they ended, mail received / acknowledged / sent, latency traces, the renderer's first frame.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from assistant.messages import (
    Activity, Done, EmailAck, EmailFailed, EmailReceived, EmailSend, EmailSent, FaceLandmarks, Heartbeat, Person, Received, Reply,
    RendererStats, Say, Speaker, Speech, Stop, SystemState, Transcript, TurnTrace, Utterance, VoiceError,
)

if TYPE_CHECKING:
    from assistant.bus import BusClient

log = logging.getLogger(__name__)


class SceneFailed(AssertionError):
    """Something the scene waits for did not happen in time; the message says what."""


@dataclass
class SaySeen:
    """A ``voice.say`` and what became of it."""

    say_id: str
    text: str
    turn: str
    said_ns: int
    skill: str = ""
    first_sound_ns: int = 0
    """``play_at_ns`` of its first utterance."""
    ended_ns: int = 0
    status: str = ""
    """``finished``, ``interrupted`` or ``failed`` once over; empty while it plays."""


@dataclass
class Line:
    """One line of the transcript."""

    t_ns: int
    who: str
    text: str
    note: str = ""


@dataclass
class KioskWatch:
    client: BusClient
    """A ``BusClient`` subscribed to everything (topic ``""``)."""
    t0_ns: int = field(default_factory=time.monotonic_ns)
    bus_log: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    says: dict[str, SaySeen] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    speakers: list[Speaker] = field(default_factory=list)
    activity: list[Activity] = field(default_factory=list)
    """``hearing.activity`` batches (the last 200)."""
    transcripts: list[tuple[str, Transcript]] = field(default_factory=list)
    replies: list[tuple[str, Reply]] = field(default_factory=list)
    traces: list[tuple[str, TurnTrace]] = field(default_factory=list)
    received: list[EmailReceived] = field(default_factory=list)
    acks: list[str] = field(default_factory=list)
    sends: list[EmailSend] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    stops: list[tuple[int, str]] = field(default_factory=list)
    barge_ins: int = 0
    counters: dict[str, dict[str, float]] = field(default_factory=dict)
    renderer_stats: list[RendererStats] = field(default_factory=list)
    first_frame: tuple[int, int] | None = None
    """``(frame, shown_ns)`` of the earliest renderer frame seen: ties the recording's time to the clock."""
    last_quiet_ns: int = 0
    """When the assistant last fell silent (its last ``voice.say`` ended)."""

    def _reply_for(self, say: SaySeen) -> None:
        for turn, r in reversed(self.replies[-4:]):
            if r.text == say.text and turn == say.turn:
                say.skill = r.skill
                return

    def handle(self, rx: Received) -> None:
        from assistant.cli import _describe

        m, h = rx.msg, rx.header
        if m.TYPE == "system.probe":
            return
        self.bus_log.append(_describe(rx))
        if isinstance(m, SystemState):
            self.states[m.service] = m.state
        elif isinstance(m, Heartbeat):
            self.states.setdefault(m.service, m.state)
            self.counters[m.service] = dict(m.counters)
        elif isinstance(m, Person):
            self.people.append(m)
            who = f" {m.identity}" if m.identity else ""
            self.lines.append(Line(h.ts_ns, "camera", f"person {m.track_id}{who} {m.event}", f"{m.distance_m:.1f} m" if m.distance_m else ""))
        elif isinstance(m, Activity):
            self.activity = [*self.activity[-199:], m]
        elif isinstance(m, Speaker):
            self.speakers.append(m)
            who = f" {m.identity}" if m.identity else ""
            self.lines.append(Line(h.ts_ns, "camera", f"speaker {m.track_id}{who}", f"confidence {m.confidence:.2f}"))
        elif isinstance(m, Speech):
            if m.event == "started" and m.during_playback:
                self.barge_ins += 1
        elif isinstance(m, Transcript):
            self.transcripts.append((h.turn, m))
            self.lines.append(Line(m.speech_end_ns, "heard", m.text or "(nothing understood)", f"confidence {m.confidence:.2f}"))
        elif isinstance(m, Reply):
            self.replies.append((h.turn, m))
        elif isinstance(m, Say):
            self.says[m.say_id] = SaySeen(m.say_id, m.text, h.turn, h.ts_ns)
        elif isinstance(m, Utterance):
            say = self.says.get(m.say_id)
            if say is not None and not say.first_sound_ns:
                say.first_sound_ns = m.play_at_ns
        elif isinstance(m, (Done, VoiceError)):
            say = self.says.get(m.say_id)
            last = isinstance(m, VoiceError) or m.last or m.status != "finished"
            if say is not None and last and not say.status:
                say.status = "failed" if isinstance(m, VoiceError) else m.status
                say.ended_ns = h.ts_ns
                self._reply_for(say)
                note = say.skill + ("" if say.status == "finished" else f", {say.status}")
                self.lines.append(Line(say.first_sound_ns or say.said_ns, "assistant", say.text, note))
                if not self.speaking:
                    self.last_quiet_ns = h.ts_ns
        elif isinstance(m, Stop):
            self.stops.append((h.ts_ns, m.reason))
        elif isinstance(m, TurnTrace):
            self.traces.append((h.turn, m))
        elif isinstance(m, EmailReceived):
            self.received.append(m)
            self.lines.append(Line(h.ts_ns, "mail", f"from {m.sender}: {m.subject}", m.mail_id))
        elif isinstance(m, EmailAck):
            self.acks.append(m.mail_id)
        elif isinstance(m, EmailSend):
            if all(s.send_id != m.send_id for s in self.sends):
                self.sends.append(m)
                self.lines.append(Line(h.ts_ns, "mail", f"sending to {', '.join(m.to)}: {m.subject}", m.send_id))
        elif isinstance(m, EmailSent):
            self.sent.append(m.send_id)
        elif isinstance(m, EmailFailed):
            self.lines.append(Line(h.ts_ns, "mail", f"sending failed: {m.error}", m.send_id))
        elif isinstance(m, FaceLandmarks):
            if self.first_frame is None or m.frame < self.first_frame[0]:
                self.first_frame = (m.frame, m.shown_ns)
        elif isinstance(m, RendererStats):
            self.renderer_stats.append(m)

    @property
    def speaking(self) -> bool:
        return any(not s.status for s in self.says.values())

    def pump(self, timeout_ms: int = 50) -> None:
        """Handle what the bus has (waiting up to ``timeout_ms`` for the first message)."""
        rx = self.client.recv(timeout_ms=timeout_ms)
        while rx is not None:
            self.handle(rx)
            rx = self.client.recv(timeout_ms=0)

    def wait(self, predicate: Callable[[], object], timeout_s: float, what: str | Callable[[], str]):
        """Pump until ``predicate()`` is truthy and return its value; ``SceneFailed(what)`` on timeout
        (``what`` may be a function, to describe the state at that moment)."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise SceneFailed(f"{what() if callable(what) else what}: nothing within {timeout_s:.0f} s")
            self.pump()

    def idle(self, seconds: float) -> None:
        """Keep watching for ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.pump(int(max(1, min(50, (deadline - time.monotonic()) * 1000))))

    def quiet(self, for_s: float = 0.6, timeout_s: float = 30.0) -> None:
        """Wait until the assistant has said nothing for ``for_s`` (a pause a visitor would take)."""
        self.wait(lambda: not self.speaking and time.monotonic_ns() - self.last_quiet_ns >= for_s * 1e9,
                  timeout_s, "the assistant to finish speaking")

    def reply_after(self, since_ns: int, skill: str | tuple[str, ...] = ()) -> SaySeen | None:
        """The first reply (not a filler) said after ``since_ns`` whose skill is ``skill`` (any when empty)."""
        skills = (skill,) if isinstance(skill, str) else skill
        for s in self.says.values():
            if s.said_ns < since_ns:
                continue
            if not s.skill:
                for turn, r in self.replies:
                    if r.text == s.text and turn == s.turn:
                        s.skill = r.skill
            if s.skill and s.skill != "filler" and (not skills or s.skill in skills):
                return s
        return None

    def person(self, event: str, identity: str | None = None) -> Person | None:
        for p in self.people:
            if p.event == event and (identity is None or p.identity == identity):
                return p
        return None

    def rel(self, t_ns: int) -> float:
        return (t_ns - self.t0_ns) / 1e9
