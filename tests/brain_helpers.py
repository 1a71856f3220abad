"""Shared pieces for the brain tests: one real embedder per session, a fake clock, a brain factory."""

from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from assistant.config.schema import BrainSettings
from assistant.messages import Reply, Say

_embedder = None


def embedder():
    """The real MiniLM on onnxruntime (loaded once: ~1 s)."""
    global _embedder
    if _embedder is None:
        pytest.importorskip("tokenizers", reason="needs the brain extra")
        import services.brain  # noqa: F401  (single-threaded BLAS before numpy work)
        from services.brain.embedder import EmbedderUnavailable, SentenceEmbedder

        try:
            _embedder = SentenceEmbedder()
        except EmbedderUnavailable as exc:
            pytest.skip(str(exc))
    return _embedder


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.ns = 1_000_000_000_000

    def __call__(self) -> int:
        return self.ns

    def advance(self, seconds: float) -> None:
        self.ns += int(seconds * 1e9)


FIXED_NOW = datetime(2025, 3, 4, 15, 5)

BOOK = {"bob_smith": "bob@example.org", "Reception": "reception@example.org"}


def settings(**kw) -> BrainSettings:
    base = dict(address_book=BOOK, min_confidence=0.15)
    base.update(kw)
    return msgspec.structs.replace(BrainSettings(), **base)


def says(outs) -> list[str]:
    return [o.msg.text for o in outs if isinstance(getattr(o, "msg", None), Say)]


def replies(outs) -> list[Reply]:
    return [o.msg for o in outs if isinstance(getattr(o, "msg", None), Reply)]


def of_type(outs, cls) -> list:
    return [o.msg for o in outs if isinstance(getattr(o, "msg", None), cls)]
