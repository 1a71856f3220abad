"""The answer gap across real processes: the broker, the brain and the voice (espeak-ng on the speaker's WAV
twin); the test plays hearing. A visitor who pauses mid-sentence and goes on within the gap is not talked
over: the answer to the first part is stopped before a sample of it leaves the speaker, and the whole
sentence is answered once; a tentative end (the voice still up at the pause) holds the answer longer. Timing is
checked on what the twin played."""

from __future__ import annotations

import time

import numpy as np
import pytest

from assistant.messages import Done, Say, Speech, Stop, SystemState, Transcript, Utterance
from tests.voice import test_voice_service as voice_rig

pytestmark = pytest.mark.slow

MS = 1_000_000
GAP_MS = 500  # after a sure end of turn
TENTATIVE_MS = 1000  # after a tentative one: the longest the default turn_continue_ms allows, room for a loaded machine


def heard(v, turn: str, text: str, speech_end_ns: int, tentative: bool = False) -> None:
    """What hearing publishes for a turn: its speech edge, then the final transcript."""
    v.client.publish(Speech(event="started", at_ns=speech_end_ns - 1_200 * MS), turn=turn)
    v.client.publish(Transcript(text=text, confidence=0.9, engine="whisper", speech_start_ns=speech_end_ns - 1_200 * MS,
                                speech_end_ns=speech_end_ns, end_reason="silence", end_tentative=tentative), turn=turn)


def test_a_visitor_who_goes_on_within_the_gap_is_not_talked_over(procs, tmp_path):
    v = voice_rig.Voice(procs, tmp_path)
    procs.start("services.brain", env={
        "ASSISTANT_BRAIN__STORE_PATH": str(tmp_path / "brain.sqlite"), "ASSISTANT_BRAIN__ALWAYS_LISTEN": "true",
        "ASSISTANT_BRAIN__ANSWER_GAP_MS": str(GAP_MS), "ASSISTANT_BRAIN__ANSWER_GAP_TENTATIVE_MS": str(TENTATIVE_MS),
        "ASSISTANT_BRAIN__PHRASES_EVERY_S": "3600"})
    v.wait(lambda rx: isinstance(rx.msg, SystemState) and rx.msg.service == "brain" and rx.msg.state == "ready", 60)

    # A finished question: the final comes 250 ms after the end of speech; the answer plays at the gap, not sooner.
    end1 = time.monotonic_ns() - 250 * MS
    heard(v, "t1", "What time is it?", end1)
    say1 = v.wait(lambda rx: isinstance(rx.msg, Say) and rx.header.turn == "t1").msg
    assert say1.not_before_ns == end1 + GAP_MS * MS
    utt1 = v.wait(lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == say1.say_id).msg
    assert utt1.play_at_ns >= say1.not_before_ns, "not before the gap"
    assert v.done(say1.say_id).status == "finished"

    # "What time is it | in London?", the voice still up at the pause (a tentative end): the visitor goes on 750 ms
    # after the end of speech, past the sure gap but inside the tentative one.
    time.sleep(0.5)  # the first answer's last samples are out
    end2 = time.monotonic_ns() - 250 * MS
    heard(v, "t2", "What time is it?", end2, tentative=True)
    say2 = v.wait(lambda rx: isinstance(rx.msg, Say) and rx.header.turn == "t2").msg
    assert say2.not_before_ns == end2 + TENTATIVE_MS * MS
    time.sleep(max(0.0, (end2 + 750 * MS - time.monotonic_ns()) / 1e9))
    resumed = time.monotonic_ns()
    assert end2 + GAP_MS * MS < resumed < say2.not_before_ns - 150 * MS, "the test must resume between the two gaps"
    v.client.publish(Speech(event="started", at_ns=resumed - 90 * MS), turn="t2")
    v.wait(lambda rx: isinstance(rx.msg, Stop) and rx.msg.reason == "barge-in")
    assert v.done(say2.say_id).status == "interrupted"
    time.sleep(1.0)  # the rest of the sentence
    end3 = time.monotonic_ns() - 250 * MS
    v.client.publish(Transcript(text="What time is it in London?", confidence=0.9, engine="whisper",
                                speech_start_ns=end2 - 1_200 * MS, speech_end_ns=end3, end_reason="silence"), turn="t2")
    say3 = v.wait(lambda rx: isinstance(rx.msg, Say) and rx.header.turn == "t2" and rx.msg.say_id != say2.say_id).msg
    assert say3.not_before_ns == end3 + GAP_MS * MS
    utt3 = v.wait(lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == say3.say_id).msg
    assert v.done(say3.say_id).status == "finished"
    assert len([m for m in v.of(Say) if m.say_id in (say2.say_id, say3.say_id)]) == 2

    pcm, _, times = v.recording()
    loud = (np.abs(pcm.astype(np.int32)) > 200)
    first1 = times[np.nonzero(loud & (times >= end1))[0][0]]
    assert first1 >= say1.not_before_ns and abs(first1 - utt1.play_at_ns) / MS <= 10, "the first answer started at its time"
    during = np.nonzero(loud & (times >= end2) & (times < end3 + GAP_MS * MS))[0]
    assert during.size == 0, f"the kiosk spoke {(times[during[0]] - end2) / MS:.0f} ms after the first part's end of speech"
    after = times[np.nonzero(loud & (times >= end3))[0][0]]
    assert after >= say3.not_before_ns and abs(after - utt3.play_at_ns) / MS <= 10, "the whole sentence's answer, at its time"
    assert not v.of(Done, say_id=say2.say_id, status="finished")
