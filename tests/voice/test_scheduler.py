"""SpeechScheduler on its own: real espeak-ng, the real player on the WAV twin, messages collected."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from assistant.messages import Done, EngineUsed, Playback, Say, Utterance, VoiceError
from hardware.speaker import WavSinkSpeaker, read_recording
from services.voice.player import Player
from assistant.config.schema import VoiceSettings
from services.voice.scheduler import SpeechScheduler
from services.voice.synthesizer import Synthesizer
from services.voice.tts.failover import FailoverChain

MS = 1_000_000


class Collected:
    """The published messages, with a way to wait for one."""

    def __init__(self) -> None:
        self.items: list[tuple[object, str, int]] = []
        self._cond = threading.Condition()

    def __call__(self, msg, turn) -> None:
        with self._cond:
            self.items.append((msg, turn, time.monotonic_ns()))
            self._cond.notify_all()

    def of(self, cls, **match):
        return [m for m, _, _ in self.items if isinstance(m, cls) and all(getattr(m, k) == v for k, v in match.items())]

    def wait(self, cls, timeout=10.0, **match):
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self.of(cls, **match):
                left = deadline - time.monotonic()
                assert left > 0, f"no {cls.__name__} {match}; got {[type(m).__name__ for m, _, _ in self.items]}"
                self._cond.wait(left)
        return self.of(cls, **match)[0]


@pytest.fixture
def rig(tmp_path, espeak):
    speaker = WavSinkSpeaker(tmp_path / "out.wav", sample_rate=22050, block_frames=110, latency_s=0.010)
    player = Player(speaker)
    out = Collected()
    sched = SpeechScheduler(Synthesizer(FailoverChain([espeak])), player, out,
                            VoiceSettings(lead_ms=30, sentence_gap_ms=100, announce_ahead_s=0.5))
    yield sched, out, speaker
    sched.close()
    player.close()


def test_reply_is_announced_before_it_plays_sentence_after_sentence(rig):
    sched, out, speaker = rig
    sched.say(Say(text="First one. Second one here.", say_id="r1"), turn="t1")
    out.wait(Done, say_id="r1", last=True)
    utts = out.of(Utterance, say_id="r1")
    assert [u.index for u in utts] == [0, 1] and [u.last for u in utts] == [False, True]
    assert all(u.phonemes and u.phoneme_alphabet == "espeak" and u.pcm for u in utts)
    announced = {m.utterance_id: t for m, _, t in out.items if isinstance(m, Utterance)}
    for u in utts:
        assert announced[u.utterance_id] < u.play_at_ns, "announced before it plays"
    first_end = utts[0].play_at_ns + len(utts[0].pcm) // 2 * 10**9 // utts[0].sample_rate
    assert utts[1].play_at_ns == first_end + 100 * MS, "the next sentence follows after the gap"
    starts = {p.utterance_id: p.at_ns for p in out.of(Playback, position_samples=0)}
    errors = [(starts[u.utterance_id] - u.play_at_ns) / MS for u in utts]
    assert abs(errors[0]) <= 0.1
    # A stalled CPU (an underrun) delays the first sentence's end; the next then starts late, never early.
    assert abs(errors[1]) <= 0.1 or (speaker.underruns and errors[1] > 0), (errors, speaker.underruns)
    assert [d.status for d in out.of(Done, say_id="r1")] == ["finished", "finished"]
    assert out.wait(EngineUsed, say_id="r1").engine == "espeak-ng"
    assert {turn for _, turn, _ in out.items} == {"t1"}


def test_queued_requests_play_in_order_and_an_interrupt_drops_them(rig):
    sched, out, _ = rig
    sched.say(Say(text="This first request is long enough to still be playing.", say_id="a"))
    sched.say(Say(text="Queued behind it.", say_id="b"))
    out.wait(Utterance, say_id="a")
    time.sleep(0.3)
    sched.say(Say(text="Barge in now.", say_id="c", interrupt=True))
    out.wait(Done, say_id="c", last=True, timeout=10)
    done_a = out.of(Done, say_id="a")
    assert [(d.status, d.last) for d in done_a] == [("interrupted", True)]
    assert [(d.utterance_id, d.status, d.last) for d in out.of(Done, say_id="b")] == [("", "interrupted", True)]
    assert not out.of(Utterance, say_id="b"), "a dropped request is never announced"
    assert [d.status for d in out.of(Done, say_id="c")] == ["finished"]


def test_stop_between_sentences_ends_the_request_once(rig):
    sched, out, speaker = rig
    text = " ".join(f"Sentence number {i} of a long reply." for i in range(8))
    sched.say(Say(text=text, say_id="long"))
    out.wait(Playback, timeout=10)
    time.sleep(0.2)
    requested = sched.stop("barge-in")
    time.sleep(0.3)
    lasts = out.of(Done, say_id="long", last=True)
    assert len(lasts) == 1 and lasts[0].status == "interrupted" and lasts[0].detail == "barge-in"
    assert len(out.of(Utterance, say_id="long")) < 8, "later sentences are announced only as they come up"
    assert not sched.busy
    sched.player.close()
    pcm, _, times = read_recording(speaker.path)
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > 200)[0]
    assert (times[loud[-1]] - requested) / MS <= 20


def test_text_that_cannot_be_spoken_gives_an_error_and_a_failed_done(rig):
    sched, out, _ = rig
    sched.say(Say(text="🙂🙂 🎉", say_id="emoji"))
    sched.say(Say(text="Hello.", lang="xx-nowhere", say_id="lang"))
    sched.say(Say(text="", say_id="empty"))
    for sid in ("emoji", "lang", "empty"):
        done = out.wait(Done, say_id=sid, last=True)
        assert done.status == "failed" and done.utterance_id == ""
        err = out.wait(VoiceError, say_id=sid)
        assert err.error and "\n" not in err.error
    assert "language" in out.of(VoiceError, say_id="lang")[0].error
    assert not out.of(Utterance)


def test_a_held_reply_plays_at_its_not_before_time_and_a_stop_before_it_leaves_the_speaker_silent(rig):
    sched, out, speaker = rig
    hold = time.monotonic_ns() + 600 * MS
    sched.say(Say(text="Held until the gap is over.", say_id="held", not_before_ns=hold))
    utt = out.wait(Utterance, say_id="held")
    assert utt.play_at_ns == hold, "announced at once, to play at the hold"
    out.wait(Done, say_id="held", last=True)
    start = out.of(Playback, utterance_id=utt.utterance_id, position_samples=0)[0].at_ns
    assert abs(start - hold) / MS <= 0.1
    # The visitor goes on within the hold: the answer is stopped before a sample of it is heard.
    hold = time.monotonic_ns() + 600 * MS
    sched.say(Say(text="Never heard.", say_id="gone", not_before_ns=hold))
    out.wait(Utterance, say_id="gone")
    sched.stop("barge-in")
    time.sleep(0.8)
    assert [(d.status, d.last) for d in out.of(Done, say_id="gone")] == [("interrupted", True)]
    assert not [p for p in out.of(Playback) if p.utterance_id != utt.utterance_id], "nothing of it played"
    sched.player.close()
    pcm, _, times = read_recording(speaker.path)
    loud = np.nonzero(np.abs(pcm.astype(np.int32)) > 200)[0]
    assert times[loud[-1]] < hold - 500 * MS, "the speaker stayed silent after the first reply"
