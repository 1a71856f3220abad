"""Word error rate, for tests and the benchmark, with the usual text normalisation: lower case, no
punctuation, numbers as words ("240" -> "two forty" or "two hundred forty", whichever the reference
says), "mr" = "mister", contractions expanded, British spellings as American."""

from __future__ import annotations

import itertools
import re

# Spellings the recogniser's dictionary and the reference transcripts write differently.
_SAME = {"mr": "mister", "mrs": "missus", "dr": "doctor", "ok": "okay", "i'm": "i am", "it's": "it is",
         "that's": "that is", "what's": "what is", "where's": "where is", "don't": "do not", "can't": "cannot",
         "colour": "color", "favour": "favor", "favourite": "favorite", "centre": "center", "theatre": "theater",
         "organise": "organize", "realise": "realize", "cheque": "check", "programme": "program", "travelling": "traveling",
         "neighbour": "neighbor", "honour": "honor", "grey": "gray", "metre": "meter", "labour": "labor", "%": "percent"}

_ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _below_100(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])


def _cardinal(n: int, with_and: bool = False) -> list[str]:
    if n < 100:
        return _below_100(n)
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            tail = (["and"] if with_and and rest and rest < 100 else []) + (_cardinal(rest, with_and) if rest else [])
            return _cardinal(n // size, with_and) + [name] + tail
    return []


def _paired(n: int) -> list[str]:
    """Spoken in pairs of digits: 1455 -> fourteen fifty five, 240 -> two forty, 1900 -> nineteen hundred."""
    hi, lo = divmod(n, 100)
    if lo == 0:
        return _cardinal(hi) + ["hundred"]
    return _cardinal(hi) + (["oh"] + _ONES[lo:lo + 1] if lo < 10 else _below_100(lo))


def spellings(token: str) -> list[list[str]]:
    """Ways to say a number token ("240", "15th", "3.5"); a word has one: itself."""
    m = re.fullmatch(r"(\d+)(st|nd|rd|th)?", token)
    if not m:
        return [[token]]
    digits, suffix = m.groups()
    n = int(digits)
    options = [_cardinal(n), _cardinal(n, with_and=True)]
    if 100 <= n < 10000:
        options.append(_paired(n))
    if len(digits) > 1 and digits.startswith("0") or len(digits) > 4:
        options.append([_ONES[int(d)] for d in digits])
    if suffix:
        ords = []
        for o in options:
            last = o[-1]
            last = _ORD.get(last, (last[:-1] + "ieth") if last.endswith("y") else last + "th")
            ords.append(o[:-1] + [last])
        options = ords
    unique = []
    for o in options:
        if o not in unique:
            unique.append(o)
    return unique


def _tokens(text: str) -> list[str]:
    text = text.lower().replace("%", " percent").replace("&", " and ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 -> 1000
    return [_SAME.get(w, w) for w in re.findall(r"[a-z0-9']+", text)]


def normalize(text: str) -> list[str]:
    """Normalised words; a number takes its plain cardinal reading (see ``wer`` for the best-matching one)."""
    return " ".join(" ".join(spellings(w)[0]) for w in _tokens(text)).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]


def _best_errors(ref: list[str], hyp_text: str) -> int:
    """Edits against the reference, numbers read the way that matches it best (at most 64 readings tried)."""
    choices = [spellings(w) for w in _tokens(hyp_text)]
    best = None
    for combo in itertools.islice(itertools.product(*choices), 64):
        d = edit_distance(ref, [w for part in combo for w in " ".join(part).split()])
        best = d if best is None else min(best, d)
    return best if best is not None else len(ref)


def wer(refs: list[str] | str, hyps: list[str] | str) -> float:
    """Corpus WER: total word edits over total reference words."""
    if isinstance(refs, str):
        refs, hyps = [refs], [hyps]  # type: ignore[list-item]
    norm_refs = [normalize(r) for r in refs]
    errors = sum(_best_errors(r, h) for r, h in zip(norm_refs, hyps, strict=True))
    words = sum(len(r) for r in norm_refs)
    return errors / max(words, 1)
