"""The kiosk knowledge base: questions and answers the operator writes, matched by meaning.

File format (TOML; YAML with the same shape when PyYAML is installed)::

    [[entry]]
    questions = ["Where are the toilets?", "I need the bathroom"]   # one or more phrasings
    answer = "The toilets are down the corridor on your left."

Every phrasing is embedded once at load; a question is answered by the entry whose phrasing is
nearest in meaning (cosine of sentence embeddings), when that similarity reaches the threshold.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> np.ndarray: ...


class KnowledgeError(ValueError):
    """The knowledge file is unusable; the message names the file and the entry."""


@dataclass(frozen=True)
class Entry:
    questions: tuple[str, ...]
    answer: str


@dataclass(frozen=True)
class Match:
    """The best entry for a question and how close it was."""

    entry: Entry
    question: str
    """The stored phrasing that matched best."""
    score: float
    """Cosine similarity in [-1, 1]."""


def load_entries(path: Path) -> list[Entry]:
    """Read a TOML or YAML knowledge file; ``KnowledgeError`` names the file and the bad entry."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KnowledgeError(f"cannot read knowledge file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise KnowledgeError(f"{path}: YAML needs PyYAML (pip install pyyaml), or write the file as TOML") from None
            data: Any = yaml.safe_load(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except KnowledgeError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse error becomes one line naming the file
        detail = " ".join(str(exc).split())  # parsers give multi-line messages; the operator gets one line
        raise KnowledgeError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {detail}") from None
    items = data.get("entry") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise KnowledgeError(f"{path}: expected a list of entries ([[entry]] tables in TOML)")
    entries = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise KnowledgeError(f"{path}: entry {i} is not a table with 'questions' and 'answer'")
        questions = item.get("questions", item.get("question"))
        if isinstance(questions, str):
            questions = [questions]
        answer = item.get("answer")
        if not questions or not all(isinstance(q, str) and q.strip() for q in questions):
            raise KnowledgeError(f"{path}: entry {i} needs 'questions' (a non-empty list of strings)")
        if not isinstance(answer, str) or not answer.strip():
            raise KnowledgeError(f"{path}: entry {i} needs an 'answer' string")
        entries.append(Entry(tuple(q.strip() for q in questions), answer.strip()))
    return entries


class KnowledgeBase:
    """Nearest stored question by meaning; ``None`` below the confidence threshold."""

    def __init__(self, entries: list[Entry], embedder: Embedder, threshold: float) -> None:
        self.entries = entries
        self.embedder = embedder
        self.threshold = threshold
        self._phrasings = [(e, q) for e in entries for q in e.questions]
        self._matrix = embedder.embed([q for _, q in self._phrasings]) if self._phrasings else np.zeros((0, 1), np.float32)
        log.info("knowledge base: %d entries, %d phrasings", len(entries), len(self._phrasings))

    @classmethod
    def from_file(cls, path: Path, embedder: Embedder, threshold: float) -> "KnowledgeBase":
        return cls(load_entries(path), embedder, threshold)

    def best(self, question: str) -> Match | None:
        """The closest entry whatever its score (``None`` only when the base is empty)."""
        if not self._phrasings or not question.strip():
            return None
        scores = self._matrix @ self.embedder.embed([question])[0]
        i = int(np.argmax(scores))
        entry, phrasing = self._phrasings[i]
        return Match(entry, phrasing, float(scores[i]))

    def answer(self, question: str) -> Match | None:
        """The closest entry when it is at least ``threshold`` similar, else ``None``."""
        match = self.best(question)
        return match if match is not None and match.score >= self.threshold else None

    def phrases(self) -> list[str]:
        """Phrasings for the STT's expected-phrase list."""
        return [q for _, q in self._phrasings]
