"""``words+prosody``: the words' end-of-turn verdict, overruled to unfinished when the voice did not fall at the pause."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.config.schema import HearingSettings
from hardware.microphone import RATE
from services.hearing.pipeline import HearingPipeline
from services.hearing.stt import Result, WordTime
from services.hearing.turn import (DOUBTFUL, FALL_ST, FINISHED, SURE_P, TENTATIVE_FALL_ST, UNFINISHED, final_pitch_st, prosody_state,
                                   tentative_end)


def voice(f0_hz: np.ndarray, level: float = 6000.0) -> np.ndarray:
    """A vowel-like harmonic tone following the pitch track ``f0_hz`` (one value per sample)."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    return (x / np.abs(x).max() * level).astype(np.int16)


def glide(seconds: float, start_hz: float, end_semitones: float, last_s: float = 0.3) -> np.ndarray:
    """Level at ``start_hz``, then over the last ``last_s`` moving ``end_semitones``; 210 ms of silence after (as at the check)."""
    n, m = int(seconds * RATE), int(last_s * RATE)
    f0 = np.full(n, start_hz)
    f0[n - m:] = start_hz * 2 ** (np.linspace(0, end_semitones, m) / 12)
    return np.concatenate([voice(f0), np.zeros(int(0.21 * RATE), np.int16)])


@pytest.mark.parametrize("semitones", [-6.0, -4.0, 0.0, 3.0])
def test_final_pitch_follows_the_voice_at_the_pause(semitones):
    got = final_pitch_st(glide(1.5, 140.0, semitones))
    assert got is not None and abs(got - semitones) < 1.0, got


@pytest.mark.parametrize("pcm", [np.zeros(0, np.int16), np.zeros(RATE, np.int16), voice(np.full(RATE // 10, 150.0)),
                                 np.random.default_rng(0).integers(-32768, 32767, RATE, dtype=np.int16),
                                 np.full(RATE, 32767, np.int16)])
def test_no_pitch_from_silence_noise_clipping_or_a_blip(pcm):
    assert final_pitch_st(pcm) is None  # too little voice: the words alone decide


def test_a_voice_that_did_not_fall_makes_the_turn_unfinished():
    assert prosody_state(FINISHED, -5.0) == FINISHED
    assert prosody_state(FINISHED, FALL_ST) == FINISHED
    assert prosody_state(FINISHED, -1.0) == UNFINISHED
    assert prosody_state(DOUBTFUL, -1.0) == UNFINISHED and prosody_state(DOUBTFUL, -5.0) == DOUBTFUL
    assert prosody_state(UNFINISHED, -5.0) == UNFINISHED  # a fall never hurries a sentence the words call unfinished
    assert prosody_state(FINISHED, None) == FINISHED


def test_an_end_is_tentative_when_the_voice_did_not_fall_and_smart_turn_is_not_quite_sure():
    level, rising = glide(1.5, 140.0, 0.0), glide(1.5, 140.0, 3.0)
    assert tentative_end(level, 0.9) and tentative_end(rising, SURE_P - 0.01)
    assert not tentative_end(glide(1.5, 140.0, TENTATIVE_FALL_ST - 1.0), 0.5)  # it fell
    assert not tentative_end(glide(1.5, 140.0, FALL_ST - 2.0), 0.9)
    assert not tentative_end(rising, SURE_P)  # Smart Turn (people's turns) outweighs our pitch tracker
    assert not tentative_end(np.zeros(RATE, np.int16), 0.5)  # no pitch (too little voice): the words and Smart Turn decide
    assert tentative_end(rising, None)  # no model: the pitch alone


class HeardAtThePause:
    """The engine calls ``_turn_complete`` makes: Whisper's text at the pause (sure of its last word), a partial."""

    name = "stub"

    def __init__(self, text: str) -> None:
        self.result = Result(text=text, words=[WordTime(text.split()[-1], 0.0, 0.5, 0.99)], confidence=0.99)

    def peek(self, timeout=None):
        return self.result

    def speculating(self) -> bool:
        return False

    def partial(self) -> str:
        return self.result.text.lower().rstrip("?.")


@pytest.mark.parametrize("mode,semitones,want", [("words+prosody", -6.0, FINISHED), ("words+prosody", 0.0, UNFINISHED),
                                                 ("words", 0.0, FINISHED)])
def test_the_pipeline_asks_the_pitch_only_in_its_mode(mode, semitones, want):
    pipeline = HearingPipeline(HearingSettings(end_of_turn=mode, aec=False), HeardAtThePause("Is the gym open?"), lambda ev: None)
    pipeline._utt_audio = [glide(1.5, 140.0, semitones)]
    assert pipeline._turn_complete() == want
