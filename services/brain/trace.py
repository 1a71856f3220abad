"""Per-turn latency traces: end of speech -> transcript -> reply text -> first sound -> first mouth frame.

First sound is the ``play_at_ns`` of the first utterance spoken for the turn (a filler counts:
it is what the visitor hears first); first mouth is the first ``face.landmarks`` frame shown for
one of the turn's utterances. A trace is published when the mouth frame arrives, or with zeros
for the missing stages once ``timeout_ns`` has passed since the reply (no voice or renderer).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from assistant.messages import TurnTrace

log = logging.getLogger(__name__)


@dataclass
class _Trace:
    turn: str
    speech_end_ns: int
    transcript_ns: int
    reply_ns: int = 0
    first_sound_ns: int = 0
    first_mouth_ns: int = 0
    utterances: set[str] = field(default_factory=set)


class TraceBook:
    """Open traces by turn; returns finished ``TurnTrace`` messages as ``(turn, trace)``."""

    def __init__(self, timeout_ns: int, limit: int = 64) -> None:
        self.timeout_ns = timeout_ns
        self.limit = limit
        self._by_turn: dict[str, _Trace] = {}
        self._by_utterance: dict[str, _Trace] = {}

    def start(self, turn: str, speech_end_ns: int, transcript_ns: int) -> None:
        if not turn or turn in self._by_turn:
            return
        if len(self._by_turn) >= self.limit:  # bound memory if nothing ever finishes them
            self._drop(next(iter(self._by_turn.values())))
        self._by_turn[turn] = _Trace(turn, speech_end_ns, transcript_ns)

    def replied(self, turn: str, now_ns: int) -> None:
        t = self._by_turn.get(turn)
        if t is not None and not t.reply_ns:
            t.reply_ns = now_ns

    def sound(self, turn: str, utterance_id: str, play_at_ns: int) -> None:
        t = self._by_turn.get(turn)
        if t is None:
            return
        t.utterances.add(utterance_id)
        self._by_utterance[utterance_id] = t
        if not t.first_sound_ns or play_at_ns < t.first_sound_ns:
            t.first_sound_ns = play_at_ns

    def mouth(self, utterance_id: str, shown_ns: int) -> tuple[str, TurnTrace] | None:
        t = self._by_utterance.get(utterance_id)
        if t is None or t.first_mouth_ns:
            return None
        t.first_mouth_ns = shown_ns
        return self._finish(t)

    def expire(self, now_ns: int) -> list[tuple[str, TurnTrace]]:
        """Traces whose reply is older than the timeout (or that never got a reply), with what they have."""
        due = [t for t in self._by_turn.values() if now_ns - (t.reply_ns or t.transcript_ns) > self.timeout_ns]
        return [self._finish(t) for t in due]

    def _drop(self, t: _Trace) -> None:
        self._by_turn.pop(t.turn, None)
        for u in t.utterances:
            self._by_utterance.pop(u, None)

    def _finish(self, t: _Trace) -> tuple[str, TurnTrace]:
        self._drop(t)
        msg = TurnTrace(
            speech_end_ns=t.speech_end_ns, transcript_ns=t.transcript_ns, reply_ns=t.reply_ns,
            first_sound_ns=t.first_sound_ns, first_mouth_ns=t.first_mouth_ns,
        )

        def ms(a: int, b: int) -> str:
            return f"{(b - a) / 1e6:.0f}" if a and b else "-"

        log.info(
            "turn %s latency ms: speech end->transcript %s, ->reply %s, ->first sound %s; sound->mouth %s",
            t.turn, ms(t.speech_end_ns, t.transcript_ns), ms(t.speech_end_ns, t.reply_ns),
            ms(t.speech_end_ns, t.first_sound_ns), ms(t.first_sound_ns, t.first_mouth_ns),
        )
        return t.turn, msg
