"""Word error rate, for tests and the benchmark."""

from __future__ import annotations

import re

# Spellings the recogniser's dictionary and the reference transcripts write differently.
_SAME = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay", "i'm": "i am", "it's": "it is",
         "that's": "that is", "what's": "what is", "where's": "where is", "don't": "do not", "can't": "cannot"}


def normalize(text: str) -> list[str]:
    words = re.findall(r"[a-z0-9']+", text.lower())
    return " ".join(_SAME.get(w, w) for w in words).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]


def wer(refs: list[str] | str, hyps: list[str] | str) -> float:
    """Corpus WER: total word edits over total reference words."""
    if isinstance(refs, str):
        refs, hyps = [refs], [hyps]  # type: ignore[list-item]
    errors = sum(edit_distance(normalize(r), normalize(h)) for r, h in zip(refs, hyps, strict=True))
    words = sum(len(normalize(r)) for r in refs)
    return errors / max(words, 1)
