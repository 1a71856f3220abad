"""Speech requests -> utterances on the player: queueing, barge-in, ``play_at`` and the reports.

``SpeechScheduler`` is the voice service's engine, with no bus in it: it takes ``voice.say``
requests, streams each reply sentence by sentence (``ReplyStream``), and for every sentence
announces a ``voice.utterance`` (PCM, phonemes, ``play_at_ns``) *before* scheduling it on the
``Player``. What it has to say goes to a ``publish(message, turn)`` callable.

Settings: the ``voice`` config section itself (``VoiceSettings``), no copy of it.

Timing: a reply's first sentence is scheduled ``voice.lead_ms`` after its audio is ready (the
renderer's time to prepare; it adds to the first sound, so it is small). Later sentences follow
the one before after ``voice.sentence_gap_ms`` (200 ms by default, the schema's default whether
the scheduler is built by the service or alone), and are announced once the audio ahead of them
ends within ``announce_ahead_s``, which bounds how much is scheduled (and to be dropped on
barge-in) at once.

Threads: the speech loop runs on one of the runtime's workers (``workers``; the service passes
its group, which joins it at shutdown); the state below is shared with it under ``_cond``.

Reports: ``voice.engine`` when a reply's engine is known or changes; ``voice.playback`` at each
utterance's first sample and whenever the service asks (``playback()``); ``voice.done`` per
utterance. Every request ends with exactly one ``voice.done`` with ``last=True``: its final
utterance's, or one with an empty ``utterance_id`` when the rest of the request was dropped
(``interrupted``) or could not be spoken (``failed``, after a ``voice.error`` saying why).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from assistant.config.schema import VoiceSettings
from assistant.messages import Done, EngineUsed, Message, Playback, Say, Utterance, VoiceError
from assistant.workers import Workers

from .player import Player
from .reply import ReplyStream
from .synthesizer import Synthesizer
from .tts.base import TtsError

log = logging.getLogger(__name__)

NS = 1_000_000_000

#: ``publish(message, turn)``; called from the scheduler's and the player's threads.
Publish = Callable[[Message, str], None]


@dataclass(eq=False)
class _Request:
    say: Say
    turn: str
    ended: bool = False
    """Its ``last=True`` done is decided (last piece scheduled, failed, or dropped by a stop)."""


class SpeechScheduler:
    """Queue of speech requests spoken one after another on one player; thread-safe."""

    def __init__(self, synthesizer: Synthesizer, player: Player, publish: Publish,
                 settings: VoiceSettings = VoiceSettings(), workers: Workers | None = None) -> None:
        self.synth = synthesizer
        self.player = player
        self.settings = settings
        self._lead_ns = int(settings.lead_ms * NS // 1000)
        self._gap_ns = int(settings.sentence_gap_ms * NS // 1000)
        self._workers = workers if workers is not None else Workers("speech")
        self._publish = publish
        self._cond = threading.Condition()
        self._pending: deque[_Request] = deque()
        self._current: _Request | None = None
        self._stream: ReplyStream | None = None
        self._gen = 0  # bumped by stop(): work started before it must not reach the player
        self._tail_ns = 0  # when the last scheduled audio ends (0: nothing scheduled)
        self._utterances: dict[str, tuple[_Request, bool]] = {}  # id -> (request, last) until done
        self._rates: dict[str, int] = {}  # id -> sample rate, for the start-of-playback report
        self._ids = itertools.count()
        self._prefix = f"{os.getpid():x}"
        self._closed = False
        self._engines_used: dict[str, int] = {}  # written by the speech worker, under _cond
        self.unavailable = ""
        """Why nothing can be played now (the speaker is gone); requests fail with it meanwhile."""
        self._thread = self._workers.start("speech", self._run)

    # -- requests ---------------------------------------------------------------------------

    def say(self, say: Say, turn: str = "") -> None:
        """Queue ``say`` (after a stop when it asks to interrupt); quick, never raises on bad text."""
        if len(say.text) > self.settings.max_text_chars:
            self._fail(_Request(say, turn), f"text too long: {len(say.text)} characters, the limit is "
                                            f"{self.settings.max_text_chars} (voice.max_text_chars)")
            return
        if self.unavailable:
            self._fail(_Request(say, turn), self.unavailable)  # said now, not played stale when it is back
            return
        if say.interrupt:
            self.stop("interrupted by a new voice.say")
        with self._cond:
            self._pending.append(_Request(say, turn))
            self._cond.notify_all()

    def stop(self, detail: str = "stopped") -> int:
        """Silence the speaker and drop every request; returns the ``monotonic_ns`` of the stop."""
        with self._cond:
            self._gen += 1
            dropped = list(self._pending)
            self._pending.clear()
            current = self._current
            if current is not None and not current.ended:
                dropped.insert(0, current)
            for req in dropped:
                req.ended = True
            if self._stream is not None:
                self._stream.cancel()
            self._tail_ns = 0
            # Under the lock: nothing the speech thread schedules can slip in before the stop.
            requested = self.player.stop(detail)
            self._cond.notify_all()
        for req in dropped:
            self._send(Done(utterance_id="", status="interrupted", say_id=req.say.say_id, last=True,
                            detail=detail), req.turn)
        return requested

    def playback(self) -> tuple[Playback, str] | None:
        """The playback clock now (with its turn), or ``None`` when nothing is playing."""
        pos = self.player.position()
        if pos is None:
            return None
        with self._cond:
            req = self._utterances.get(pos.utterance_id, (None, False))[0]
        return (Playback(utterance_id=pos.utterance_id, position_samples=pos.position_samples, at_ns=pos.at_ns,
                         sample_rate=pos.sample_rate), req.turn if req else "")

    @property
    def engines_used(self) -> dict[str, int]:
        """Sentences spoken per engine so far (a copy: the speech worker goes on counting)."""
        with self._cond:
            return dict(self._engines_used)

    @property
    def busy(self) -> bool:
        """A request is queued, being spoken or playing."""
        with self._cond:
            return bool(self._pending) or self._current is not None or self.player.busy

    def close(self) -> None:
        """Stop speaking and end the speech thread."""
        with self._cond:
            self._closed = True
            self._gen += 1
            if self._stream is not None:
                self._stream.cancel()
            self._cond.notify_all()
        self._thread.join(timeout=2)

    # -- the speech thread ------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                req = self._pending.popleft()
                self._current, gen = req, self._gen
            try:
                self._speak(req, gen)
            except Exception as exc:  # noqa: BLE001 - one bad request must not end the voice
                log.exception("speaking %r failed", req.say.text[:60])
                if not req.ended:
                    self._fail(req, f"internal error: {type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self._current, self._stream = None, None

    def _speak(self, req: _Request, gen: int) -> None:
        say, s = req.say, self.settings
        try:
            stream = ReplyStream(self.synth, say.text, say.lang or s.lang, say.voice, s.max_chars, s.synth_ahead,
                                 private=say.private, workers=self._workers)
        except TtsError as exc:
            self._fail(req, str(exc))
            return
        with self._cond:
            if gen != self._gen:
                stream.cancel()
                return
            self._stream = stream
        engine, errors = "", set()
        for piece in stream:
            if piece.spoken is None:
                if piece.error not in errors:
                    errors.add(piece.error)
                    self._send(VoiceError(say_id=say.say_id, error=f"sentence {piece.index + 1}: {piece.error}"), req.turn)
                if piece.last:
                    self._fail(req, piece.error, already_reported=True)
                continue
            spoken = piece.spoken
            syn = spoken.synthesis
            device_pcm = self.player.to_device_rate(syn.pcm, syn.sample_rate)  # outside the lock: stop stays quick
            with self._cond:
                while (gen == self._gen and self._tail_ns
                       and self._tail_ns - time.monotonic_ns() > s.announce_ahead_s * NS):
                    self._cond.wait(timeout=max(0.001, (self._tail_ns - time.monotonic_ns()) / NS - s.announce_ahead_s))
                if gen != self._gen:
                    return
                now = time.monotonic_ns()
                play_at = max(now + self._lead_ns, self.player.earliest_play_at_ns(),
                              self._tail_ns + self._gap_ns if self._tail_ns else 0, say.not_before_ns)
                uid = f"{self._prefix}-{next(self._ids)}"
                if spoken.engine != engine:
                    engine = spoken.engine
                    self._send(EngineUsed(say_id=say.say_id, engine=engine, failed=list(spoken.failed),
                                          cached=spoken.cached), req.turn)
                self._engines_used[engine] = self._engines_used.get(engine, 0) + 1
                self._send(Utterance(utterance_id=uid, text=piece.text, sample_rate=syn.sample_rate, play_at_ns=play_at,
                                     engine=spoken.engine, pcm=syn.pcm.astype("<i2").tobytes(), phonemes=list(syn.phonemes),
                                     phoneme_alphabet=syn.alphabet if syn.phonemes else "", say_id=say.say_id,
                                     index=piece.index, last=piece.last), req.turn)
                self._utterances[uid] = (req, piece.last)
                self._rates[uid] = syn.sample_rate
                self.player.schedule(uid, syn.pcm, syn.sample_rate, play_at, on_start=self._on_start,
                                     on_done=self._on_done, device_pcm=device_pcm)
                self._tail_ns = play_at + len(syn.pcm) * NS // syn.sample_rate
                if piece.last:
                    req.ended = True

    # -- reports ----------------------------------------------------------------------------

    def _fail(self, req: _Request, error: str, already_reported: bool = False) -> None:
        """The request cannot be spoken (further): ``voice.error`` and its final ``voice.done``."""
        req.ended = True
        if not already_reported:
            self._send(VoiceError(say_id=req.say.say_id, error=error), req.turn)
        self._send(Done(utterance_id="", status="failed", say_id=req.say.say_id, last=True, detail=error), req.turn)

    def _on_start(self, uid: str, start_ns: int) -> None:
        """The utterance's first sample is leaving the speaker: anchor the playback clock there."""
        with self._cond:
            req = self._utterances.get(uid, (None, False))[0]
        if req is not None:
            self._send(Playback(utterance_id=uid, position_samples=0, at_ns=start_ns,
                                sample_rate=self._rates.get(uid, 0)), req.turn)

    def _on_done(self, uid: str, status: str, detail: str) -> None:
        with self._cond:
            req, last = self._utterances.pop(uid, (None, False))
            self._rates.pop(uid, None)
        if req is not None:
            self._send(Done(utterance_id=uid, status=status, say_id=req.say.say_id, last=last, detail=detail), req.turn)

    def _send(self, msg: Message, turn: str) -> None:
        try:
            self._publish(msg, turn)
        except Exception:  # noqa: BLE001 - a closed bus at shutdown must not kill the speech thread
            log.warning("could not publish %s", msg.TYPE, exc_info=True)
