"""Streaming replies: the first sentence is ready to play while the rest are synthesised.

``ReplyStream`` splits a reply into pieces (``text.plan_reply``) and synthesises them in order on
a worker thread, one piece ahead of the consumer at least, so the first sound only waits for the
first sentence. Iterating yields each piece's ``Spoken`` in order; ``cancel()`` (barge-in) stops
the worker after the piece it is on. The worker is one of the runtime's (``workers``).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Iterator

from assistant.workers import Workers

from .synthesizer import Synthesizer
from .text import plan_reply
from .tts.base import TtsError
from .tts.failover import Spoken

log = logging.getLogger(__name__)


@dataclass
class Piece:
    """One synthesised piece of a reply."""

    index: int
    text: str
    spoken: Spoken | None
    """``None`` when this piece could not be spoken (``error`` says why)."""
    error: str = ""
    last: bool = False


class ReplyStream:
    """Synthesise a reply piece by piece in the background; iterate to get the pieces in order."""

    def __init__(self, synthesizer: Synthesizer, text: str, lang: str = "", voice: str = "",
                 max_chars: int = 250, ahead: int = 2, *, private: bool = False,
                 workers: Workers | None = None) -> None:
        self.pieces = plan_reply(text, max_chars)
        if not self.pieces:
            raise TtsError("nothing to say: the reply is empty or has no speakable words", permanent=True)
        self._synth = synthesizer
        self._lang, self._voice = lang, voice
        self._private = private
        self._out: queue.Queue[Piece] = queue.Queue(maxsize=max(1, ahead))
        self._cancel = threading.Event()
        self._taken = 0
        self._thread = (workers if workers is not None else Workers("reply")).start("reply-synth", self._run)

    def _run(self) -> None:
        for i, text in enumerate(self.pieces):
            if self._cancel.is_set():
                return
            last = i == len(self.pieces) - 1
            try:
                piece = Piece(i, text, self._synth.speak(text, self._lang, self._voice, private=self._private), last=last)
            except TtsError as exc:
                log.warning("piece %d of reply could not be spoken: %s", i, exc)
                piece = Piece(i, text, None, str(exc), last=last)
            while not self._cancel.is_set():
                try:
                    self._out.put(piece, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def cancel(self) -> None:
        """Stop synthesising; iteration ends."""
        self._cancel.set()

    def __iter__(self) -> Iterator[Piece]:
        """Pieces not yet taken, in order (iterating twice continues where the first stopped)."""
        while self._taken < len(self.pieces):
            while True:
                if self._cancel.is_set():
                    return
                try:
                    piece = self._out.get(timeout=0.1)
                    self._taken += 1
                    break
                except queue.Empty:
                    continue
            yield piece
