"""Failover across TTS engines with a deadline per engine and back-off for unreachable ones.

Each attempt runs in its own daemon thread and the chain stops waiting at the deadline: a TTS
call stuck in a DNS lookup or a dropped TCP connection cannot be interrupted, but it must not
hold the reply. An engine that timed out or could not be reached is skipped for ``backoff_s`` so
the next sentences go straight to the next engine. A local engine (``local = True``: it runs on
this CPU, nothing to be unreachable) that misses its deadline is not backed off: it was slow
once, under load, and speaks the next sentence again; one that cannot load its voice is.

The attempts run on the runtime's workers (``assistant.workers``; the voice service passes its
group): an attempt stuck past its deadline is abandoned there, and reported at shutdown.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Sequence

from assistant.config.schema import VoiceFailoverSettings
from assistant.workers import Workers

from .base import EngineUnavailable, Synthesis, TtsEngine, TtsError

log = logging.getLogger(__name__)


@dataclass
class Spoken:
    """A synthesis and how it came about."""

    synthesis: Synthesis
    engine: str
    """Engine that spoke."""
    failed: list[str] = field(default_factory=list)
    """``"<engine>: <reason>"`` for each engine tried first that failed, timed out or was skipped."""
    cached: bool = False
    """The audio came from the cache."""


class FailoverChain:
    """Try engines in order; report which spoke and why the others did not."""

    def __init__(self, engines: Sequence[TtsEngine], settings: VoiceFailoverSettings = VoiceFailoverSettings(),
                 clock: Callable[[], float] = time.monotonic, workers: Workers | None = None) -> None:
        if not engines:
            raise ValueError("a failover chain needs at least one engine")
        self.engines = list(engines)
        self.settings = settings
        self._workers = workers if workers is not None else Workers("tts")
        self._clock = clock
        self._backoff_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def available(self) -> list[TtsEngine]:
        """Engines not in back-off, in chain order (never empty: the last resort is always there)."""
        now = self._clock()
        with self._lock:
            ok = [e for e in self.engines if self._backoff_until.get(e.name, 0.0) <= now]
        return ok or [self.engines[-1]]

    def in_backoff(self, name: str) -> bool:
        """Whether engine ``name`` is being skipped now."""
        with self._lock:
            return self._backoff_until.get(name, 0.0) > self._clock()

    def _deadline(self, engine: TtsEngine) -> float:
        return self.settings.last_timeout_s if engine is self.engines[-1] else self.settings.timeout_s

    def synthesize(self, text: str, lang: str = "", voice: str = "",
                   lookup: Callable[[TtsEngine], Synthesis | None] | None = None) -> Spoken:
        """Speak ``text`` with the first engine that can; ``TtsError`` naming every failure otherwise.

        ``lookup(engine)`` is asked before each engine is run (the cache): a hit is returned as is.
        """
        failed: list[str] = []
        permanent = True
        available = self.available()
        for engine in self.engines:
            if engine not in available:
                failed.append(f"{engine.name}: skipped (unreachable recently, in back-off)")
                continue
            if lookup is not None:
                hit = lookup(engine)
                if hit is not None:
                    return Spoken(hit, engine.name, failed, cached=True)
            try:
                synthesis = self._run(engine, text, lang, voice)
            except TtsError as exc:
                failed.append(f"{engine.name}: {exc}")
                permanent = permanent and exc.permanent
                # A network engine that timed out is likely unreachable; a local one (``local = True``,
                # Piper) was only slow on a busy CPU, so its next sentence gets its chance again.
                if isinstance(exc, EngineUnavailable) or (
                        isinstance(exc, _Timeout) and not getattr(engine, "local", False)):
                    self._back_off(engine)
                continue
            with self._lock:
                self._backoff_until.pop(engine.name, None)
            if failed:
                log.info("spoke with %s after: %s", engine.name, "; ".join(failed))
            return Spoken(synthesis, engine.name, failed)
        raise TtsError("no engine could speak: " + "; ".join(failed), permanent=permanent)

    def _back_off(self, engine: TtsEngine) -> None:
        with self._lock:
            self._backoff_until[engine.name] = self._clock() + self.settings.backoff_s
        log.warning("%s unreachable: skipped for %.0f s", engine.name, self.settings.backoff_s)

    def _run(self, engine: TtsEngine, text: str, lang: str, voice: str) -> Synthesis:
        future: Future[Synthesis] = Future()

        def work() -> None:
            try:
                future.set_result(engine.synthesize(text, lang, voice))
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                future.set_exception(exc)

        self._workers.start(f"tts-{engine.name}", work)
        deadline = self._deadline(engine)
        try:
            return future.result(timeout=deadline)
        except TimeoutError:
            raise _Timeout(f"timed out after {deadline:.2f} s") from None
        except TtsError:
            raise
        except Exception as exc:  # noqa: BLE001 - an engine bug must not stop the failover
            log.exception("%s raised an unexpected error", engine.name)
            raise TtsError(f"{type(exc).__name__}: {exc}") from exc


class _Timeout(TtsError):
    """An engine did not answer before its deadline."""
