"""bench/lib/natural_pauses.py: silences found by level, mid-sentence by punctuation, and the scoring rule."""

from __future__ import annotations

import numpy as np

from bench.lib.natural_pauses import RATE, Pause, TurnEnd, classify, score, silences


def _tone(s: float) -> np.ndarray:
    t = np.arange(int(s * RATE)) / RATE
    return (8000 * np.sin(2 * np.pi * 200 * t)).astype(np.int16)


def _quiet(s: float) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 10, int(s * RATE)).astype(np.int16)


def test_silences_inside_speech_only():
    x = np.concatenate([_quiet(1.0), _tone(1.0), _quiet(0.6), _tone(1.0), _quiet(0.2), _tone(0.5), _quiet(1.0)])
    found = silences(x)
    assert len(found) == 1, found  # not the lead-in, not the tail, not the 200 ms gap
    a, b = found[0]
    assert abs(a - 2.0) < 0.05 and abs(b - 2.6) < 0.05


def test_classify_by_punctuation_and_going_on():
    words = [("Hello,", 0.0, 0.5), ("I", 1.0, 1.1), ("am", 1.1, 1.3), ("here.", 1.3, 1.9), ("Then", 4.5, 4.8), ("and", 5.0, 5.2)]
    got = classify([(0.6, 1.0), (1.7, 4.5), (5.3, 6.0)], words)
    assert [(p.word, p.midsentence) for p in got] == [("Hello,", True), ("here.", False)]  # the tail is dropped
    long = classify([(0.55, 2.7)], [("Hello,", 0.0, 0.5), ("there", 2.8, 3.0)])
    assert not long[0].midsentence  # 2 s or more: the speaker did not go on in time


def test_score_cuts_and_fast_ends():
    pauses = [Pause(1.0, 1.6, "so,", True), Pause(3.0, 3.8, "it.", False), Pause(5.0, 5.5, "and", True), Pause(7.0, 8.0, "done.", False)]
    ends = [TurnEnd(0.9, 1.11, "so"),  # at the mid-sentence pause (VAD ended a little before the level's silence)
            TurnEnd(3.05, 3.9, "it"),  # the sentence end, but 850 ms after the end of speech: slow
            TurnEnd(5.1, 5.3, ""),  # an empty (rejected) final answers nothing
            TurnEnd(7.0, 7.21, "done"),
            TurnEnd(6.0, 6.2, "stray")]  # at no 400 ms pause
    sc = score(pauses, ends, fast_s=0.31, until_s=9.0)
    assert sc == {"pauses": 4, "midsentence": 2, "midsentence_cut": 1, "sentence_ends": 2, "sentence_ends_fast": 1,
                  "finals_elsewhere": 1}
