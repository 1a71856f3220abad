"""The voice service with the default chain gTTS -> Piper -> espeak-ng, offline, as a real process.

Google cannot be reached from here, so Piper speaks: streamed sentence by sentence, with IPA
phoneme timings for the face, from the cache the second time; bad input gets one clear
``voice.error`` (and the request's final ``voice.done``) and nothing else. With the Piper voice
missing, espeak-ng speaks and ``voice.engine`` says why Piper did not.
"""

from __future__ import annotations

import time

import pytest

from assistant.messages import Done, EngineUsed, Playback, Say, Utterance, VoiceError

from test_voice_service import Voice

pytest.importorskip("piper", reason="Piper needs the voice extra (piper-tts)")

CHAIN = '["gtts", "piper", "espeak-ng"]'


def test_offline_kiosk_speaks_with_piper_streams_caches_and_refuses_bad_input(procs, tmp_path):
    # A generous deadline: this box is shared by parallel test runs, and Piper must be the one speaking.
    v = Voice(procs, tmp_path, ASSISTANT_VOICE__ENGINES=CHAIN, ASSISTANT_VOICE__FAILOVER__TIMEOUT_S="6")
    text = ("Good morning and welcome to the front desk. Your visitor badge is ready at the counter. "
            "Please take the lift to the third floor, where your host will meet you.")
    t0 = time.monotonic_ns()
    v.client.publish(Say(text=text, say_id="r1"))
    first = v.wait(lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == "r1", 15).msg
    first_ms = (time.monotonic_ns() - t0) / 1e6
    used = v.wait(lambda rx: isinstance(rx.msg, EngineUsed) and rx.msg.say_id == "r1").msg
    assert used.engine == "piper" and used.failed and used.failed[0].startswith("gtts: ") and not used.cached, used.failed
    assert first.engine == "piper" and first.phoneme_alphabet == "ipa" and first.index == 0 and not first.last
    assert first.sample_rate == 22050 and first.text.startswith("Good morning")
    end = first.phonemes[-1].start_s + first.phonemes[-1].dur_s
    assert end == pytest.approx(len(first.pcm) / 2 / first.sample_rate, abs=1e-3)
    assert v.done("r1", 30).status == "finished"
    utts = v.of(Utterance, say_id="r1")
    assert [u.index for u in utts] == [0, 1, 2] and utts[-1].last
    # One utterance per sentence, each starting to play when it was announced for (the streaming
    # itself, first piece out before the rest is synthesised, is timed in test_piper.py).
    plays = {p.utterance_id: p.at_ns for p in v.of(Playback) if p.position_samples == 0}
    assert utts[0].play_at_ns < utts[1].play_at_ns < utts[2].play_at_ns
    assert all(abs(plays[u.utterance_id] - u.play_at_ns) < 5_000_000 for u in utts)
    assert first_ms < 20_000

    v.client.publish(Say(text=text, say_id="r2"))
    again = v.wait(lambda rx: isinstance(rx.msg, EngineUsed) and rx.msg.say_id == "r2").msg
    assert again.engine == "piper" and again.cached
    v.done("r2", 30)
    hb = v.heartbeat(lambda c: c.get("spoke_piper", 0) >= 6)
    assert hb.counters["spoke_piper"] == 6 and hb.counters["cache_hits"] == 3

    cases = {
        "empty": Say(text="", say_id="empty"),
        "controls": Say(text="\x00\x01\x07\x1b\x7f", say_id="controls"),
        "huge": Say(text="word " * 200_000, say_id="huge"),  # 1 MB
        "lang": Say(text="Hello there.", lang="xx-unknown", say_id="lang"),
    }
    before = len(v.seen)
    v.refused(cases)
    assert "nothing to say" in v.of(VoiceError, say_id="empty")[0].error
    assert "nothing to say" in v.of(VoiceError, say_id="controls")[0].error
    assert "too long" in v.of(VoiceError, say_id="huge")[0].error
    assert "language 'xx-unknown'" in v.of(VoiceError, say_id="lang")[0].error
    with pytest.raises(AssertionError):  # take in whatever else comes for these requests
        v.wait(lambda rx: False, 0.5)
    after = [rx.msg for rx, _ in v.seen[before:] if getattr(rx.msg, "say_id", "") in cases and not isinstance(rx.msg, Say)]
    assert sorted(type(m).__name__ for m in after) == ["Done"] * 4 + ["VoiceError"] * 4, after
    v.client.publish(Say(text="Still here.", say_id="alive"))
    assert v.done("alive").status == "finished"


def test_piper_voice_missing_espeak_speaks_and_says_why(procs, tmp_path):
    gone = tmp_path / "no-voice-here"
    v = Voice(procs, tmp_path, ASSISTANT_VOICE__ENGINES=CHAIN, ASSISTANT_VOICE__PIPER__VOICE=str(gone))
    v.heartbeat(lambda c: c.get("piper_unavailable") == 1)
    v.client.publish(Say(text="Hello, is anybody there?", say_id="m"))
    used = v.wait(lambda rx: isinstance(rx.msg, EngineUsed) and rx.msg.say_id == "m").msg
    assert used.engine == "espeak-ng" and [f.split(":")[0] for f in used.failed] == ["gtts", "piper"]
    assert str(gone) in used.failed[1], used.failed
    utt = v.wait(lambda rx: isinstance(rx.msg, Utterance) and rx.msg.say_id == "m").msg
    assert utt.phoneme_alphabet == "espeak" and utt.phonemes
    assert v.done("m").status == "finished"
    assert not v.of(VoiceError, say_id="m") and all(d.status == "finished" for d in v.of(Done, say_id="m"))
