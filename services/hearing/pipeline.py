"""The hearing pipeline: echo cancellation -> endpointing -> streaming STT, on a worker of its own.

A plain class (no bus) that takes the ``hearing`` config section itself (``HearingSettings``).
Live (``start``): microphone chunks go in through ``push`` (any thread) and are processed on one
worker of ``workers`` (the service's group; a private one when built alone); events come out
through ``on_event`` on that worker; ``stop`` lets it finish what is queued and joins it.
Fed synchronously (``process``, for tests and benchmarks) the same work runs on the caller's
thread, and the end-of-turn check waits for the final pass's decode instead of asking again on
the next frame (``_turn_complete``), so that offline results do not depend on the machine's load.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from assistant.config import HearingSettings
from assistant.errors import SetupError
from assistant.workers import Workers
from hardware.microphone import RATE, AudioChunk

from .echo import DoubleTalkDetector, EchoFilter, PlaybackReference
from .stt import Result, SttEngine
from .turn import FINISHED, UNFINISHED, SmartTurn, final_pitch_st, is_reply, prosody_state, smart_turn_state, tentative_end, turn_state
from .vad import Endpointer, energy_db

log = logging.getLogger(__name__)

NS = 1_000_000_000


@dataclass(frozen=True)
class SpeechStarted:
    turn: str
    at_ns: int
    during_playback: bool
    continues: bool = False
    """Speech resumed within ``continue_ms`` of the turn's last final: the same turn goes on (its next
    ``Final`` revises the last one, with the whole turn's text)."""


@dataclass(frozen=True)
class SpeechEnded:
    turn: str
    at_ns: int
    reason: str


@dataclass(frozen=True)
class PartialText:
    turn: str
    text: str


@dataclass(frozen=True)
class Final:
    turn: str
    result: Result
    speech_start_ns: int
    speech_end_ns: int
    audio_t0_ns: int
    """Time of the first sample the engine was fed (word times count from here)."""
    audio_s: float
    """Audio fed to the engine."""
    stt_s: float
    """Processing time the engine took for it."""
    reason: str = ""
    """Why the utterance ended: ``silence``, ``doubt_pause``, ``long_pause``, ``max_length``, ``audio_gap``, ``end_of_audio``."""
    rejected: str = ""
    """Why the final pass withheld its text (noise, breath, a stock phrase), as the engine said when it made
    this result (read on the pipeline thread right after ``finish()``, not later from the engine)."""
    revision: int = 0
    """0 for a turn's first final; n for the n-th revision (speech resumed after a pause the end of turn
    took for the end: the text is the whole turn, decoded again with the continuation)."""
    tentative: bool = False
    """Not a sure end: ended at the first silence although the voice did not fall there (``turn.tentative_end``),
    or after the short wait for a doubtful sentence (``doubt_pause``). The answer is held longer: the visitor may go on."""


@dataclass(frozen=True)
class ActivityFrames:
    """Level and VAD verdict of consecutive frames (for the camera's who-is-speaking)."""

    t0_ns: int
    frame_ms: int
    energy_db: list[float]
    voiced: list[bool]


Event = SpeechStarted | SpeechEnded | PartialText | Final | ActivityFrames


@dataclass(frozen=True)
class _Done:
    """A published final whose turn speech may still continue."""

    turn: str
    audio: list[np.ndarray]
    audio_t0_ns: int
    samples: int
    speech_start_ns: int
    end_ns: int
    revision: int


@dataclass
class PipelineStats:
    audio_s: float = 0.0
    """Audio processed."""
    process_s: float = 0.0
    """Time spent processing it (echo canceller, VAD, STT)."""
    utterance_s: float = 0.0
    """Audio fed to the STT engine."""
    stt_s: float = 0.0
    """Time the STT engine took."""
    dropped_chunks: int = 0
    """Chunks dropped because processing fell behind."""
    gaps: int = 0
    """Discontinuities in the captured audio (device lost, clock jumps)."""
    utterances: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    """Final transcript wall time minus end of speech, per utterance (last 100; replaced, never changed in place)."""

    @property
    def rtf(self) -> float:
        """STT processing time over the speech audio it was fed."""
        return self.stt_s / self.utterance_s if self.utterance_s else 0.0


class HearingPipeline:
    """Microphone chunks -> echo canceller -> endpointer -> STT engine -> ``on_event``.

    Configured by the ``hearing`` section ``settings``; the rest are things, not settings: the STT
    ``engine``, the played replies' ``reference``, a ``smart_turn`` model (made here when
    ``end_of_turn`` is ``smart_turn`` or ``words+smart_turn`` and none is given) and the ``workers`` group ``start`` runs on.
    """

    def __init__(self, settings: HearingSettings, engine: SttEngine, on_event: Callable[[Event], None], *,
                 reference: PlaybackReference | None = None, smart_turn: SmartTurn | None = None,
                 workers: Workers | None = None, max_queue_s: float = 10.0) -> None:
        self.settings = s = settings
        self.engine = engine
        self.on_event = on_event
        self.endpointer = Endpointer(s)
        self.turn_mode = s.end_of_turn
        self.turn_threshold = s.turn_threshold
        self.smart_turn = smart_turn
        if s.end_of_turn == "smart_turn" and smart_turn is None:
            self.smart_turn = SmartTurn()
        elif s.end_of_turn == "words+smart_turn" and smart_turn is None:
            try:
                self.smart_turn = SmartTurn()
            except SetupError as exc:  # the words alone still end turns: hearing goes on, the operator is told
                log.error("end of turn: %s; using the words alone (end_of_turn = \"words\")", exc)
                self.turn_mode = "words"
        self._pause_at: int | None = None  # samples of the utterance when its silence reached vad_speculate_ms (a pause)
        if s.end_of_turn != "silence":
            self.endpointer.end_of_turn = self._turn_complete
        self.continue_ns = s.turn_continue_ms * 1_000_000
        self._prev: _Done | None = None  # the last final's turn, while speech may still continue it
        self._revision = 0
        self._tentative = False  # the last end-of-turn check's finished verdict was tentative (turn.tentative_end)
        self._gap: list[tuple[int, np.ndarray]] = []  # frames heard since the last final, while it may continue
        self._max_samples = int(s.max_utterance_s * RATE)
        self.turn_checks: list[tuple[bool, float]] = []
        """(complete, seconds the check took) per end-of-turn decision (last 100)."""
        self.reference = reference or PlaybackReference()
        self.echo = EchoFilter(s.aec_delay_ms) if s.aec else None
        self.double_talk = DoubleTalkDetector()
        self.partial_every = s.partial_interval_ms * 1_000_000
        self.stats = PipelineStats()
        """Written by the thread that processes (``dropped_chunks``: by ``push``'s caller)."""
        self.snapshot = PipelineStats()
        """A copy of ``stats`` the worker makes after each chunk: what other threads read (the service's heartbeat)."""
        self._queue: queue.Queue[AudioChunk | None] = queue.Queue(maxsize=max(1, int(max_queue_s * 50)))
        self._phrases: list[str] | None = None
        self._lock = threading.Lock()
        self._workers = workers if workers is not None else Workers("hearing")
        self._thread: threading.Thread | None = None
        self._live = False  # started: processing on the worker, where the end-of-turn check never blocks
        self._next_ns: int | None = None  # expected time of the next sample
        self._raw = np.zeros(0, dtype=np.int16)  # mic samples waiting for a full 10 ms block
        self._clean = np.zeros(0, dtype=np.int16)  # echo-cancelled samples waiting for a VAD frame
        self._mic = np.zeros(0, dtype=np.int16)  # the same samples before cancellation
        self._ref = np.zeros(0, dtype=np.int16)  # and the reference played meanwhile
        self._clean_t0 = 0
        self._active: list[bool] = []  # playback flag per 10 ms block in _clean
        self._turn = ""
        self._speech_start = 0
        self._utt_t0 = 0
        self._utt_samples = 0
        self._utt_audio: list[np.ndarray] = []
        self._utt_stt_s = 0.0
        self._last_partial_ns = 0
        self._last_partial = ""
        # hearing.activity: frames batched into one event every ``activity_batch_ms`` (0: off)
        self.activity_frames = max(1, s.activity_batch_ms // s.vad_frame_ms) if s.activity_batch_ms > 0 else 0
        self._act_t0 = 0
        self._act_energy: list[float] = []
        self._act_voiced: list[bool] = []

    # --- threads -------------------------------------------------------------------------
    def push(self, chunk: AudioChunk) -> None:
        """Queue a chunk (from the microphone thread); drops the oldest when processing lags."""
        while True:
            try:
                self._queue.put_nowait(chunk)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.stats.dropped_chunks += 1
                except queue.Empty:
                    pass

    def start(self) -> None:
        """Process what ``push`` queues on a worker of ``workers`` until ``stop``."""
        self._live = True
        self._thread = self._workers.start("hearing-pipeline", self._run)

    def stop(self, timeout: float = 3.0) -> None:
        """Let the worker process what is queued, then join it (up to ``timeout``)."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            chunk = self._queue.get()
            if chunk is None:
                return
            try:
                self.process(chunk)
            except Exception:  # noqa: BLE001 - one bad chunk must not end hearing
                log.exception("hearing pipeline failed on a chunk; continuing")
            self.snapshot = replace(self.stats)  # one attribute swap: readers never see a half-updated copy

    def set_phrases(self, phrases: list[str]) -> None:
        """Expected phrases for the engine; applied between utterances (any thread)."""
        with self._lock:
            self._phrases = list(phrases)

    # --- processing ----------------------------------------------------------------------
    def process(self, chunk: AudioChunk) -> None:
        t_start = time.perf_counter()
        if self._next_ns is None or abs(chunk.t0_ns - self._next_ns) > 50_000_000:
            if self._next_ns is not None:
                self.stats.gaps += 1
                log.info("audio discontinuity of %.0f ms; endpointer restarts", (chunk.t0_ns - self._next_ns) / 1e6)
                self._abort_utterance()
            self._raw = np.zeros(0, dtype=np.int16)
            self._clean = np.zeros(0, dtype=np.int16)
            self._mic = np.zeros(0, dtype=np.int16)
            self._ref = np.zeros(0, dtype=np.int16)
            self._active = []
            self._next_ns = chunk.t0_ns
            self._clean_t0 = chunk.t0_ns
        self._raw = np.concatenate([self._raw, chunk.pcm])
        self._next_ns = chunk.t0_ns + len(chunk.pcm) * NS // RATE
        block = RATE // 100
        n_blocks = len(self._raw) // block
        if n_blocks:
            mic = self._raw[:n_blocks * block]
            self._raw = self._raw[n_blocks * block:]
            t_mic = self._next_ns - (len(mic) + len(self._raw)) * NS // RATE
            ref, active = self.reference.window(t_mic, len(mic))
            out = self.echo.process(mic, ref) if self.echo is not None else mic
            self._clean = np.concatenate([self._clean, out])
            self._mic = np.concatenate([self._mic, mic])
            self._ref = np.concatenate([self._ref, ref])
            # One flag for all blocks of this call: chunks are 10-30 ms, finer than the gate needs.
            self._active.extend([active] * n_blocks)
        flen = self.endpointer.frame_len
        while len(self._clean) >= flen:
            frame, self._clean = self._clean[:flen], self._clean[flen:]
            raw, self._mic = self._mic[:flen], self._mic[flen:]
            ref, self._ref = self._ref[:flen], self._ref[flen:]
            k = flen // block
            playing, self._active = any(self._active[:k]), self._active[k:]
            t_frame = self._clean_t0
            self._clean_t0 += flen * NS // RATE
            near_end = playing and self.echo is not None and self.double_talk.update(energy_db(raw), energy_db(frame), energy_db(ref))
            self._frame(frame, t_frame, playing, raw if self.echo is not None else None, near_end)
        self.stats.audio_s += len(chunk.pcm) / RATE
        self.stats.process_s += time.perf_counter() - t_start

    def _frame(self, frame: np.ndarray, t_ns: int, playing: bool, raw: np.ndarray | None, near_end: bool) -> None:
        edge = self.endpointer.process(frame, t_ns, playing, raw, near_end)
        if self.activity_frames:
            self._activity(t_ns, energy_db(frame), self.endpointer.last_voiced)
        if near_end and raw is not None and energy_db(raw) - energy_db(frame) > self.settings.playback_erle_db:
            # AEC3's suppressor mutes the first few hundred ms of double talk; where the level
            # detector shows the visitor dominates the echo, the raw frame is the better signal.
            frame = raw
        if not self._turn and self._prev is not None and len(self._gap) * self.settings.vad_frame_ms < 3000:
            self._gap.append((t_ns, frame))
        if edge is not None and edge.event == "started":
            self._begin(edge.at_ns, edge.audio, edge.audio_t0_ns, edge.during_playback)
            return
        if self._turn:
            self._feed(frame)
            if edge is not None and edge.event == "ended":
                self._finish(edge.at_ns, edge.reason)
            elif edge is not None and edge.event == "pause":
                self._timed(self.engine.speculate)
                self._pause_at = self._utt_samples
            elif edge is not None and edge.event == "resumed":
                self._pause_at = None
                self._timed(self.engine.resume)
            elif t_ns - self._last_partial_ns >= self.partial_every:
                self._last_partial_ns = t_ns
                t = time.perf_counter()
                text = self.engine.partial()
                self._utt_stt_s += time.perf_counter() - t
                if text and text != self._last_partial:
                    self._last_partial = text
                    self.on_event(PartialText(self._turn, text))

    def _activity(self, t_ns: int, level_db: float, voiced: bool) -> None:
        frame_ns = self.settings.vad_frame_ms * 1_000_000
        if self._act_energy and t_ns != self._act_t0 + len(self._act_energy) * frame_ns:
            self._flush_activity()  # a gap in the audio: frames in one event are consecutive
        if not self._act_energy:
            self._act_t0 = t_ns
        self._act_energy.append(round(min(200.0, max(0.0, level_db)), 1))
        self._act_voiced.append(bool(voiced))
        if len(self._act_energy) >= self.activity_frames:
            self._flush_activity()

    def _flush_activity(self) -> None:
        if self._act_energy:
            self.on_event(ActivityFrames(self._act_t0, self.settings.vad_frame_ms, self._act_energy, self._act_voiced))
        self._act_energy, self._act_voiced = [], []

    def _begin(self, at_ns: int, audio: list[np.ndarray], audio_t0: int, during_playback: bool) -> None:
        self._pause_at = None
        with self._lock:
            phrases, self._phrases = self._phrases, None
        if phrases is not None:
            self.engine.set_phrases(phrases)
        prev, self._prev = self._prev, None
        gap, self._gap = self._gap, []
        if prev is not None and (at_ns - prev.end_ns > self.continue_ns or prev.samples >= self._max_samples):
            prev = None
        self._turn = prev.turn if prev else uuid.uuid4().hex[:12]
        self._revision = prev.revision + 1 if prev else 0
        self._speech_start = prev.speech_start_ns if prev else at_ns
        self._utt_t0 = prev.audio_t0_ns if prev else audio_t0
        self._utt_samples = 0
        self._utt_audio = []
        self._utt_stt_s = 0.0
        self._last_partial_ns = at_ns
        self._last_partial = ""
        self.on_event(SpeechStarted(self._turn, at_ns, during_playback, continues=prev is not None))
        t = time.perf_counter()
        self.engine.start()
        if prev is not None:
            # The visitor went on after a pause that looked like the end: the final pass decodes the
            # whole turn again (the earlier speech, the pause as silence, the continuation).
            pause = [f for t, f in gap if t < audio_t0]  # the pause as heard, up to the pre-roll
            gap = (audio_t0 - prev.audio_t0_ns) * RATE // NS - prev.samples - sum(len(f) for f in pause)
            earlier = [*prev.audio, *pause, np.zeros(int(min(max(gap, 0), 2 * RATE)), np.int16)]
            self.engine.carry(np.concatenate(earlier))
            self._utt_audio = earlier
            self._utt_samples = sum(len(a) for a in earlier)
        self._utt_stt_s += time.perf_counter() - t
        for frame in audio:
            self._feed(frame)

    def _feed(self, frame: np.ndarray) -> None:
        t = time.perf_counter()
        self.engine.feed(frame)
        self._utt_stt_s += time.perf_counter() - t
        self._utt_samples += len(frame)
        self._utt_audio.append(frame)

    def _timed(self, fn):
        t = time.perf_counter()
        out = fn()
        self._utt_stt_s += time.perf_counter() - t
        return out

    def _turn_complete(self) -> bool | str | None:
        """Asked by the endpointer after ``hangover_ms`` of silence: is the visitor's sentence finished?
        ``words`` answers ``finished``, ``doubtful`` or ``unfinished`` (``turn.turn_state``); ``words+prosody``
        the same, but unfinished when the voice did not fall at the pause (``turn.prosody_state``);
        ``words+smart_turn`` the same, but waited for when Smart Turn says the turn goes on (``turn.smart_turn_state``)."""
        t = time.perf_counter()
        self._tentative = False
        if self.turn_mode == "smart_turn":
            p = self.smart_turn.probability(np.concatenate(self._utt_audio)) if self._utt_audio else 1.0
            done = p >= self.turn_threshold
        else:
            # "words": Whisper's text so far (speculated at the pause) must not trail off, and its last word
            # decides how much the streaming partial counts: Whisper's language model tends to round a
            # fragment off ("I am looking for" -> "I am looking forward.", its last word unsure) where
            # pocketsphinx writes the words it heard (and often mishears a finished sentence's last word).
            # The final pass is needed for the transcript anyway, so the decision waits for it: while it
            # is still decoding, the question is asked again on the next frame: the pipeline thread never
            # blocks on it. Fed synchronously (``process``: tests, offline benchmarks, faster than real
            # time) the ask waits for the decode, as if it took no time: decisions do not depend on load.
            wait = 0.0 if self._live else None
            result = self._timed(lambda: self.engine.peek(wait))
            if result is None and self.engine.speculating():
                return None
            partial = self._timed(self.engine.partial)
            state = turn_state(result, partial)
            if self.turn_mode == "words+prosody" and state != UNFINISHED and self._utt_audio:
                # a sentence the words call finished must also sound finished: a voice that did not fall at the
                # pause is waited for as unfinished (espeak-tuned: see docs/hearing.md, "Audio cues at the pause")
                state = prosody_state(state, self._timed(lambda: final_pitch_st(np.concatenate(self._utt_audio))))
            elif (self.turn_mode == "words+smart_turn" and state != UNFINISHED and self._utt_audio
                  and not (result is not None and is_reply(result.text))):
                # a sentence the words call finished must also sound finished to a model trained on people's turns
                # (a short reply, "Yes.", is left to the words: too little speech for the model). It hears the
                # utterance up to the pause (speech + vad_speculate_ms, as measured), ~30 ms on one core.
                pcm = np.concatenate(self._utt_audio)[:self._pause_at]
                p = self._timed(lambda: self.smart_turn.probability(pcm))
                state = smart_turn_state(state, p, self.turn_threshold)
                # finished, but with the voice still up: answered, later (the brain's answer_gap_tentative_ms)
                self._tentative = state == FINISHED and self._timed(lambda: tentative_end(pcm, p))
            self.turn_checks = [*self.turn_checks[-99:], (state == FINISHED, time.perf_counter() - t)]
            return state
        self.turn_checks = [*self.turn_checks[-99:], (done, time.perf_counter() - t)]
        return done

    def _finish(self, end_ns: int, reason: str) -> None:
        turn, self._turn = self._turn, ""
        self.on_event(SpeechEnded(turn, end_ns, reason))
        t = time.perf_counter()
        result = self.engine.finish()
        rejected = str(getattr(self.engine, "last", {}).get("rejected", "") or "")
        self._utt_stt_s += time.perf_counter() - t
        audio_s = self._utt_samples / RATE
        self.stats.utterances += 1
        self.stats.utterance_s += audio_s
        self.stats.stt_s += self._utt_stt_s
        if reason in ("silence", "doubt_pause", "long_pause") and self.continue_ns:
            # Also after an empty (rejected) final: the first part alone may have been too short to trust.
            self._prev = _Done(turn, self._utt_audio, self._utt_t0, self._utt_samples, self._speech_start, end_ns, self._revision)
        self._utt_audio = []
        self._gap = []
        # not a sure end: finished at the first silence with the voice up, or after the short wait for a sentence one
        # signal doubted (its answer would come ~900 ms after the end of speech: hold it to the tentative gap)
        tentative, self._tentative = (self._tentative and reason == "silence") or reason == "doubt_pause", False
        self.on_event(Final(turn, result, self._speech_start, end_ns, self._utt_t0, audio_s, self._utt_stt_s, reason, rejected,
                            self._revision, tentative))
        self.stats.latencies_ms = [*self.stats.latencies_ms[-99:], (time.monotonic_ns() - end_ns) / 1e6]

    def _abort_utterance(self) -> None:
        """Audio broke off mid-utterance: close it with what was heard."""
        if self._turn:
            self._finish(self._clean_t0, "audio_gap")
        self._prev = None
        self.endpointer.reset()

    def flush(self) -> None:
        """End an utterance still open (end of a file)."""
        if self._turn:
            self.endpointer.reset()
            self._finish(self._clean_t0, "end_of_audio")

    @property
    def rtf(self) -> float:
        """STT processing time over the speech audio it was fed."""
        return self.stats.rtf
