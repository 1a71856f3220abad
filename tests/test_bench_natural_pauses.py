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
    assert sc == {"pauses": 4, "midsentence": 2, "midsentence_cut": 1, "midsentence_final": 1, "sentence_ends": 2,
                  "sentence_ends_fast": 1, "sentence_ends_tentative": 0, "finals_elsewhere": 1}


def test_a_mid_sentence_final_is_a_cut_only_when_its_answer_would_be_heard_before_the_visitor_goes_on():
    # A 600 ms pause (1.0-1.6 s); the final comes 210 ms after the end of speech at 0.9 s; speech after the pause
    # is detected 90 ms after it ends (1.69 s). The answer plays 200 ms after the final (1.31 s): heard, a cut.
    # Held until 600 ms after the end of speech (1.5 s): still heard. Held 800 ms (1.7 s): stopped unheard.
    pauses = [Pause(1.0, 1.6, "so,", True)]
    ends = [TurnEnd(0.9, 1.11, "so")]
    cut = [score(pauses, ends, 0.31, 3.0, answer_s=0.2, gap_s=g, onset_s=0.09)["midsentence_cut"] for g in (0.0, 0.6, 0.8)]
    assert cut == [1, 1, 0]
    assert score(pauses, ends, 0.31, 3.0, answer_s=0.2, gap_s=0.8, onset_s=0.09)["midsentence_final"] == 1
    # A long pause (1.0-2.5 s) is cut at any of those gaps; without ``answer_s`` any final there is a cut.
    assert score([Pause(1.0, 2.5, "so,", True)], ends, 0.31, 3.0, answer_s=0.2, gap_s=0.8, onset_s=0.09)["midsentence_cut"] == 1
    # A tentative end (the voice still up) is held for the longer gap: at 600 ms with 1000 after a tentative end, the
    # tentative final's answer (1.9 s) is stopped unheard, a sure one's (1.5 s) is not; a sentence end held that way is counted.
    held = [TurnEnd(0.9, 1.11, "so", tentative=True)]
    assert score(pauses, held, 0.31, 3.0, answer_s=0.2, gap_s=0.6, onset_s=0.09, tentative_gap_s=1.0)["midsentence_cut"] == 0
    assert score(pauses, ends, 0.31, 3.0, answer_s=0.2, gap_s=0.6, onset_s=0.09, tentative_gap_s=1.0)["midsentence_cut"] == 1
    assert score(pauses, held, 0.31, 3.0, answer_s=0.2, gap_s=0.6, onset_s=0.09, tentative_gap_s=None)["midsentence_cut"] == 1  # none given: the sure gap
    end = [Pause(1.0, 1.6, "here.", False)]
    assert score(end, held, 0.31, 3.0)["sentence_ends_tentative"] == 1 and score(end, ends, 0.31, 3.0)["sentence_ends_tentative"] == 0


def test_the_midpause_rule_counts_a_cut_only_when_the_held_answer_would_be_heard():
    # bench/hearing.py's rule on the paused sentences: the final of the first part at 1.25 s (end of speech 1.0 s),
    # the continuation detected at 1.7 s. Played 200 ms after the final (1.45 s): a cut. Held to 600 ms after the
    # end of speech (1.6 s): still one. Held to 750 ms (1.75 s): stopped before anyone heard it.
    from types import SimpleNamespace

    from bench.hearing import midpause_cuts
    from services.hearing.pipeline import Final, SpeechStarted

    s = 1_000_000_000

    def final(at, end, text, turn="t1", tentative=False):
        return (at, 0, Final(turn, SimpleNamespace(text=text), 0, end, 0, 1.0, 0.1, tentative=tentative))

    events = [(0, 0, SpeechStarted("t1", 0, False)), final(int(1.25 * s), 1 * s, "I need a taxi"),
              (int(1.7 * s), 0, SpeechStarted("t1", int(1.7 * s), False, continues=True)),
              final(int(3.0 * s), int(2.8 * s), "I need a taxi to the station")]
    assert [midpause_cuts(events, 1, g)[0] for g in (0, 600, 750)] == [[0], [0], []]
    assert midpause_cuts(events, 1, 750)[1] == [0]  # the answer to the first part was prepared, then dropped
    # The continuation became a turn of its own: cut at any gap (its first part was answered alone).
    split = events[:3] + [final(int(3.0 * s), int(2.8 * s), "to the station", turn="t2")]
    assert midpause_cuts(split, 1, 900)[0] == [0]
    # A tentative end of the first part: its answer waits the tentative gap (the default, 1000 ms: 2.0 s), stopped unheard.
    held = [events[0], final(int(1.25 * s), 1 * s, "I need a taxi", tentative=True), *events[2:]]
    assert midpause_cuts(held, 1, 600)[0] == [] and midpause_cuts(held, 1, 600, 600)[0] == [0]


def test_the_silence_at_an_inserted_pause_counts_the_readers_own():
    # A 200 ms gap of the reader's own, 500 ms of floor noise inserted in its middle: the end of turn meets 700 ms.
    from bench.hearing import insert_pause, silence_around

    x = (np.sin(np.arange(32_000) / 5) * 8000).astype(np.int16)
    x[16_000:19_200] = 0
    y = insert_pause(x, 17_600, 0.5, np.random.default_rng(0))
    assert abs(silence_around(y, 17_600 + 4_000) - 0.7) <= 0.02
    assert silence_around(y, 100) == 0.0  # inside speech
