"""The demo's stage on its own: the microphone twin's cues, the bus watch, the transcript and latency report."""

from __future__ import annotations

import json
import time

import numpy as np
import soundfile as sf

from assistant.messages import Done, Header, Person, Received, Reply, Say, Transcript, TurnTrace, Utterance
from assistant.stage.report import latencies, latency_report, transcript
from assistant.stage.visitor import Spoken
from assistant.stage.walk import WALK_IN, write_walk
from assistant.stage.watch import KioskWatch, SceneFailed
from hardware.microphone import RATE, FileMicrophone


def test_a_cued_file_is_heard_from_the_time_in_its_name(tmp_path, shared_data):
    cues = tmp_path / "cues"
    cues.mkdir()
    chunks = []
    mic = FileMicrophone(None, cue_dir=cues, chunk_ms=20)
    mic.start(chunks.append)
    try:
        tone = (np.sin(np.arange(int(0.3 * RATE)) * 2 * np.pi * 440 / RATE) * 8000).astype(np.int16)
        at = time.monotonic_ns() + 400_000_000
        sf.write(str(tmp_path / "tone.wav"), tone, RATE, subtype="PCM_16")
        (tmp_path / "tone.wav").rename(cues / f"{at}_tone.wav")
        (cues / "0_bad.wav").write_bytes((shared_data / "speech" / "malformed" / "awful.wav").read_bytes())
        time.sleep(1.1)
    finally:
        mic.stop()
    audio = np.concatenate([c.pcm for c in chunks]).astype(np.float32)
    t = chunks[0].t0_ns + np.arange(len(audio)) * 1_000_000_000 // RATE
    loud = t[np.abs(audio) > 2000]
    assert len(loud) > 0, "the cued tone was never heard"
    assert abs(loud[0] - at) < 5_000_000 and abs(loud[-1] - (at + 300_000_000)) < 5_000_000
    assert mic.errors == 1  # the malformed cue was refused, and the microphone kept going


def rx(msg, ts_ns: int, turn: str = "", source: str = "x") -> Received:
    return Received(Header(msg.TYPE, 1, 0, ts_ns, source, turn), msg)


def test_the_watch_follows_replies_and_writes_the_transcript_and_latencies():
    w = KioskWatch(client=None, t0_ns=1_000_000_000)
    s = 1_000_000_000
    w.handle(rx(Person(event="recognised", track_id=1, identity="sam"), 2 * s))
    w.handle(rx(Transcript(text="what time is it", confidence=0.9, engine="p", speech_start_ns=3 * s, speech_end_ns=4 * s), 4 * s + 300_000_000, "t1"))
    w.handle(rx(Say(text="It's 3:05 PM.", say_id="t1:1"), 4 * s + 310_000_000, "t1"))
    w.handle(rx(Reply(text="It's 3:05 PM.", skill="time", person="Sam"), 4 * s + 311_000_000, "t1"))
    assert w.speaking and w.reply_after(4 * s).skill == "time"
    w.handle(rx(Utterance(utterance_id="u1", text="It's 3:05 PM.", sample_rate=22050, play_at_ns=4 * s + 500_000_000, engine="e", say_id="t1:1"), 4 * s + 400_000_000, "t1"))
    w.handle(rx(Done(utterance_id="u1", status="finished", say_id="t1:1", last=True), 6 * s, "t1"))
    w.handle(rx(TurnTrace(speech_end_ns=4 * s, transcript_ns=4 * s + 300_000_000, reply_ns=4 * s + 310_000_000,
                          first_sound_ns=4 * s + 500_000_000, first_mouth_ns=4 * s + 480_000_000), 6 * s, "t1"))
    assert not w.speaking and w.last_quiet_ns == 6 * s
    visitor = [Spoken("what time is it", 3 * s, 4 * s, np.zeros(10, np.int16))]
    text = transcript(w, visitor).splitlines()
    assert [ln.split()[1] for ln in text[2:]] == ["camera", "visitor", "heard", "assistant"]
    assert text[-1].split()[0] == "00:03.5" and "It's 3:05 PM.   [time]" in text[-1]
    assert latencies(w) == [{"turn": "t1", "speech_end_to_transcript_ms": 300.0, "speech_end_to_reply_ms": 310.0,
                             "speech_end_to_first_sound_ms": 500.0, "first_sound_to_first_mouth_ms": -20.0}]
    assert "end of speech -> first sound: p50 500 ms" in latency_report(w)


def test_waiting_for_what_never_comes_names_it():
    class Silent:
        def recv(self, timeout_ms=None):
            time.sleep((timeout_ms or 0) / 1000)

    w = KioskWatch(client=Silent())
    try:
        w.wait(lambda: False, 0.1, "the camera to recognise sam")
    except SceneFailed as exc:
        assert "the camera to recognise sam" in str(exc)
    else:
        raise AssertionError("no SceneFailed")


def test_the_walk_file_is_replaced_whole(tmp_path):
    path = tmp_path / "walk.json"
    write_walk(path, WALK_IN)
    assert json.loads(path.read_text()) == WALK_IN and list(tmp_path.iterdir()) == [path]


def test_the_camera_twin_follows_the_walk_file(tmp_path):
    from hardware.camera_sim import PersonSprite, SimulatedCamera, Walk, build_scene

    sprite = PersonSprite("x", [np.full((120, 80, 3), 0.5, np.float32)], [np.ones((120, 80), np.float32)], (20.0, 20.0, 40.0, 40.0))
    scene = build_scene("plain", 160, 120, walks=[Walk(sprite, [])])
    walk = tmp_path / "walk.json"
    cam = SimulatedCamera(scene, realtime=False, jpeg_quality=0, walk_file=walk)
    cam.open()

    def people_after(keys) -> list:
        if keys is not None:
            walk.write_text(keys if isinstance(keys, str) else json.dumps(keys))
        time.sleep(0.25)  # the file is looked at five times a second
        cam.read()
        return cam.last_truth

    assert people_after(None) == []  # no file yet: the scene's own walk (empty here)
    seen = people_after([[0, 0.0, 0.8], [60, 0.0, 0.8]])
    assert len(seen) == 1 and abs(seen[0].distance_m - 0.8) < 1e-6
    assert len(people_after("[[0, 0.0")) == 1  # a broken file keeps the walk as it was
    assert people_after([]) == []
