"""Natural pauses: where a real speaker went silent, and whether the end of turn answered there.

Used by bench/hearing.py on spontaneous recordings (talking/single, talking/wild). The truth of
"did the sentence end here?" is Whisper's punctuation over the whole recording (its weakness: a
language model's guess at where a spoken sentence ends, not a person's judgement); the silences
come from the audio level, not from the pipeline's own VAD, so the pipeline is not judged by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16_000
MIN_PAUSE_S = 0.4
"""A silence this long inside speech is a pause the end of turn has to decide on (the hangover is 210 ms)."""
GOES_ON_S = 2.0
"""A speaker who goes on within this long after a word without sentence-final punctuation paused mid-sentence."""
SILENT_UNDER_DB = 25.0
"""A 10 ms frame is silent when its 20 ms level lies this far under the recording's 90th-percentile level."""
SENTENCE_END = (".", "?", "!", "…")


@dataclass(frozen=True)
class Pause:
    start_s: float
    end_s: float
    word: str
    """The word before the pause, as Whisper wrote it over the whole recording (with its punctuation)."""
    midsentence: bool
    """The word before it ends no sentence and the speaker goes on within ``GOES_ON_S``."""

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


def level_db(x: np.ndarray) -> np.ndarray:
    """Level (dB over int16 units) of 20 ms windows every 10 ms."""
    hop, win = RATE // 100, RATE // 50
    y = np.asarray(x, np.float64)
    n = max(1, (len(y) - win) // hop + 1)
    idx = np.arange(n)[:, None] * hop + np.arange(min(win, len(y)))
    return 10 * np.log10(np.mean(y[idx] ** 2, axis=1) + 1)


def silences(x: np.ndarray, min_s: float = MIN_PAUSE_S, under_db: float = SILENT_UNDER_DB) -> list[tuple[float, float]]:
    """(start, end) seconds of runs of silent frames of at least ``min_s`` between the first and the last
    loud frame (inside speech: not the lead-in or the tail)."""
    db = level_db(x)
    silent = db < float(np.percentile(db, 90)) - under_db
    loud = np.flatnonzero(~silent)
    if len(loud) < 2:
        return []
    out, k = [], int(loud[0])
    while k <= loud[-1]:
        if silent[k]:
            j = k
            while silent[j]:
                j += 1
            if (j - k) / 100 >= min_s:
                out.append((k / 100, j / 100 + 0.01))  # frame k covers k*10 ... k*10+20 ms: its centre is silent
            k = j
        else:
            k += 1
    return out


def classify(pauses: list[tuple[float, float]], words: list[tuple[str, float, float]]) -> list[Pause]:
    """Each silence between two words with the word before it (Whisper's ``(text, start, end)``; its word ends
    stretch into the silence, its starts are closer: the last word starting before the silence) and mid-sentence
    or not. A silence before the first word or after the last (the recording's tail) is dropped."""
    out = []
    for a, b in pauses:
        before = [w for w in words if w[1] < a]
        if not before or not any(w[1] >= b - 0.2 for w in words):
            continue
        word = before[-1][0].strip()
        out.append(Pause(a, b, word, b - a < GOES_ON_S and not word.endswith(SENTENCE_END)))
    return out


@dataclass(frozen=True)
class TurnEnd:
    """A final the pipeline emitted, in the recording's time."""

    speech_end_s: float
    """The pipeline's end of speech (its last voiced frame)."""
    at_s: float
    """When the final came (the synthetic time of the chunk that produced it)."""
    text: str
    tentative: bool = False
    """The end of turn was tentative (the voice still up): the brain holds its answer for the longer gap."""


def heard_at(final_at, speech_end, answer, gap):
    """When the answer to a final would be heard (any one unit): ``answer`` after the final, and no sooner than the
    brain's answer ``gap`` after its end of speech. Speech detected before then stops it unheard."""
    return max(final_at + answer, speech_end + gap)


def score(pauses: list[Pause], ends: list[TurnEnd], fast_s: float, until_s: float, slack_s: float = 0.25,
          answer_s: float | None = None, gap_s: float = 0.0, onset_s: float = 0.0, tentative_gap_s: float | None = None) -> dict:
    """Which pauses the pipeline ended a turn at (a final with text whose end of speech lies in the silence,
    up to ``slack_s`` before it: the VAD's last voiced frame and the level's first silent one differ), and
    which sentence ends it ended within ``fast_s`` of its end of speech (hangover plus ~100 ms; and which of them
    tentatively: their answer waits the longer gap). Finals at
    no such pause before ``until_s`` (the last word's start: the recording's end is no pause) are counted too.

    A mid-sentence pause counts as cut when a final came there (``midsentence_final`` always counts that)
    or, with ``answer_s``, only when its answer would be heard before the visitor goes on: ``answer_s`` after
    the final and no sooner than ``gap_s`` after its end of speech, before the speech after the pause is
    detected (``onset_s`` after the pause ends). Speech detected first stops the answer unheard. A tentative
    final's answer waits ``tentative_gap_s`` (None: ``gap_s``)."""
    tgap = gap_s if tentative_gap_s is None else tentative_gap_s
    cut, fast, finals, held, matched = [], [], [], [], set()
    for p in pauses:
        mine = [e for e in ends if e.text and p.start_s - slack_s <= e.speech_end_s <= p.end_s]
        matched.update(id(e) for e in mine)
        if p.midsentence:
            finals.append(bool(mine))
            cut.append(bool(mine) if answer_s is None else
                       any(heard_at(e.at_s, e.speech_end_s, answer_s, tgap if e.tentative else gap_s) < p.end_s + onset_s
                           for e in mine))
        else:
            fast.append(any(e.at_s - e.speech_end_s <= fast_s for e in mine))
            held.append(any(e.tentative for e in mine))
    return {"pauses": len(pauses), "midsentence": len(cut), "midsentence_cut": sum(cut), "midsentence_final": sum(finals),
            "sentence_ends": len(fast), "sentence_ends_fast": sum(fast), "sentence_ends_tentative": sum(held),
            "finals_elsewhere": sum(1 for e in ends if e.text and id(e) not in matched and e.speech_end_s < until_s)}


def rate(num: int, den: int) -> float | None:
    return round(num / den, 3) if den else None
