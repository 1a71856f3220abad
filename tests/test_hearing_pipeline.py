"""The hearing pipeline on real speech, driven offline (synthetic capture times, no bus):
endpointing, the maximum utterance length, the playback reference, self-hearing and barge-in."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from assistant.config import HearingSettings
from assistant.workers import Workers
from hardware.microphone import RATE, AudioChunk, load_audio
from services.hearing.echo import PlaybackReference
from services.hearing.pipeline import ActivityFrames, Final, HearingPipeline, PartialText, SpeechEnded, SpeechStarted
from services.hearing.stt import Result, SttEngine, WordTime
from services.hearing.stt.pocketsphinx_engine import PocketSphinxEngine
from services.hearing.vad import Endpointer
from bench.lib.wer import wer

from .hearing_audio import REPLY, VISITOR, barge_in_scene, synth, with_gaps

T0 = 10**12  # an arbitrary monotonic origin


@pytest.fixture(scope="module")
def engine():
    return PocketSphinxEngine()


def run(pipeline: HearingPipeline, pcm: np.ndarray, chunk: int = 320, noise: float = 10.0) -> None:
    pcm = np.clip(pcm + np.random.default_rng(1).normal(0, noise, len(pcm)), -32768, 32767).astype(np.int16)
    for i in range(0, len(pcm), chunk):
        pipeline.process(AudioChunk(pcm[i:i + chunk], T0 + i * 1_000_000_000 // RATE))
    pipeline.flush()


def test_endpointing_segments_each_sentence(engine, tmp_path):
    texts = ["hello what time is it today", "where is the meeting room", "thank you very much"]
    audio, spans = with_gaps([synth(t, tmp_path / f"{i}.wav") for i, t in enumerate(texts)], gap_s=0.8)
    events = []
    run(HearingPipeline(HearingSettings(), engine, events.append), audio)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    finals = [e for e in events if isinstance(e, Final)]
    assert len(starts) == len(ends) == len(finals) == 3, events
    for (a, b), s, e in zip(spans, starts, ends):
        assert abs((s.at_ns - T0) / 1e9 - a) < 0.12, (a, s)  # edges within ~a VAD frame or two of the truth
        assert abs((e.at_ns - T0) / 1e9 - b) < 0.15, (b, e)
        # finished sentences: ended at the first silence, or after the short wait when Smart Turn (trained on people,
        # not on espeak's intonation) doubts one (end_of_turn = "words+smart_turn"; docs/hearing.md)
        assert e.reason in ("silence", "doubt_pause") and not s.during_playback
    assert len({e.turn for e in starts}) == 3 and [f.turn for f in finals] == [s.turn for s in starts]
    assert wer(texts, [f.result.text for f in finals]) <= 0.2  # "today" is often heard as "the day"
    assert finals[0].result.words[0].start_s >= 0.0
    # Partials arrive while speaking, for the same turn.
    partials = [e for e in events if isinstance(e, PartialText)]
    assert partials and {p.turn for p in partials} <= {s.turn for s in starts}
    # hearing.activity: every 30 ms frame's level and verdict, consecutive, in batches of ~150 ms,
    # voiced inside the sentences and not in the gaps between them.
    acts = [e for e in events if isinstance(e, ActivityFrames)]
    assert acts and all(a.frame_ms == 30 and len(a.energy_db) == len(a.voiced) == 5 for a in acts[:-1])
    assert all(b.t0_ns == a.t0_ns + len(a.energy_db) * 30_000_000 for a, b in zip(acts, acts[1:]))
    flags = [(a.t0_ns + i * 30_000_000 - T0) / 1e9 for a in acts for i, v in enumerate(a.voiced) if v]
    inside = [t for t in flags if any(lo - 0.06 <= t <= hi for lo, hi in spans)]
    assert len(flags) > 30 and len(inside) / len(flags) > 0.95
    loud = [e for a in acts for e, v in zip(a.energy_db, a.voiced) if v]
    quiet = [e for a in acts for e, v in zip(a.energy_db, a.voiced) if not v]
    assert np.median(loud) > np.median(quiet) + 20


def test_maximum_utterance_length_cuts_long_speech(engine, shared_data):
    pcm = load_audio(shared_data / "speech" / "librivox" / "sense_and_sensibility_01_austen_64kb-0870.wav")  # 7 s
    events = []
    run(HearingPipeline(HearingSettings(max_utterance_s=3.0), engine, events.append), np.concatenate([np.zeros(8000, np.int16), pcm, np.zeros(16000, np.int16)]))
    ends = [e for e in events if isinstance(e, SpeechEnded)]
    assert ends[0].reason == "max_length" and len(ends) >= 2
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    assert (ends[0].at_ns - starts[0].at_ns) / 1e9 <= 3.05


def test_silence_and_noise_make_no_transcript(engine):
    events = []
    noise = np.random.default_rng(3).normal(0, 300, 5 * RATE)  # steady fan-like noise, -40 dBFS
    run(HearingPipeline(HearingSettings(), engine, events.append), noise)
    assert not [e for e in events if isinstance(e, (SpeechStarted, Final))]


def test_playback_reference_timeline_and_cut():
    ref = PlaybackReference(tail_ms=300)
    pcm = (np.arange(RATE, dtype=np.int16) % 100 + 1).astype(np.int16)  # 1 s at 16 kHz
    ref.add("u1", pcm.tobytes(), RATE, T0)
    w, active = ref.window(T0 + 500_000_000, 160)
    assert active and np.array_equal(w, pcm[8000:8160])
    w, active = ref.window(T0 - 20_000_000, 640)  # straddles the start
    assert np.all(w[:320] == 0) and np.array_equal(w[320:], pcm[:320])
    assert ref.window(T0 + 1_200_000_000, 160)[1]  # the room still rings 200 ms after the end
    assert not ref.window(T0 + 1_400_000_000, 160)[1]
    ref.cut(T0 + 250_000_000)
    w, active = ref.window(T0 + 300_000_000, 160)
    assert not w.any()
    with pytest.raises(ValueError, match="odd PCM byte count"):
        ref.add("bad", b"\x00\x01\x02", RATE, T0)
    with pytest.raises(ValueError, match="sample_rate"):
        ref.add("bad", b"\x00\x01", 0, T0)
    # Other rates are resampled to 16 kHz.
    assert len(ref.add("u2", np.zeros(24000, np.int16).tobytes(), 24000, T0)) == RATE


@pytest.fixture(scope="module")
def voices(tmp_path_factory):
    d = tmp_path_factory.mktemp("voices")
    return synth(REPLY, d / "reply.wav", voice="mb-us1"), synth(VISITOR, d / "visitor.wav")


def scene_events(engine, scene, stop_after_s: float | None = None):
    """Run a scene; the reply is announced on the reference (and cut ``stop_after_s`` after the
    visitor starts, as the brain's voice.stop would)."""
    ref = PlaybackReference()
    ref.add("reply", scene.reply.tobytes(), RATE, T0 + int(scene.reply_at_s * 1e9))
    if stop_after_s is not None:
        ref.cut(T0 + int((scene.visitor_at_s + stop_after_s) * 1e9))
    events = []
    run(HearingPipeline(HearingSettings(), engine, events.append, reference=ref), scene.mic)
    return events


def test_own_reply_is_not_heard(engine, voices):
    reply, _ = voices
    events = scene_events(engine, barge_in_scene(reply, None))
    assert not [e for e in events if isinstance(e, (SpeechStarted, Final))], events
    # Without the canceller the same audio is "speech": the test can fail.
    raw = []
    pipeline = HearingPipeline(HearingSettings(aec=False), engine, raw.append)
    scene = barge_in_scene(reply[:2 * RATE], None)
    for i in range(0, len(scene.mic), 320):
        pipeline.process(AudioChunk(scene.mic[i:i + 320], T0 + i * 1_000_000_000 // RATE))
        if any(isinstance(e, SpeechStarted) for e in raw):
            break
    assert any(isinstance(e, SpeechStarted) for e in raw)


@pytest.mark.parametrize("after_s", [1.0, 2.5, 4.0])
def test_visitor_over_the_reply_is_a_barge_in(engine, voices, after_s):
    reply, visitor = voices
    # The reply stops 0.3 s after barge-in (brain -> voice.stop); the room leak stops with it.
    scene = barge_in_scene(reply[:int((after_s + 0.3) * RATE)], visitor, visitor_after_s=after_s)
    events = scene_events(engine, scene)
    starts = [e for e in events if isinstance(e, SpeechStarted)]
    finals = [e for e in events if isinstance(e, Final)]
    assert len(starts) == 1 and starts[0].during_playback, events
    # The edge is found in the audio within 300 ms of the onset (the service test times detection itself).
    assert 0 <= (starts[0].at_ns - T0) / 1e9 - scene.visitor_at_s < 0.3
    # Words spoken over the reply come out damaged (AEC3 mutes double-talk onsets); the words after
    # the reply stopped are clean. Measured: WER 0.00-0.43 over onsets from 1 to 4 s into the reply.
    text = finals[0].result.text
    assert "meeting room" in text and wer(VISITOR, text) <= 0.6, text


@pytest.mark.parametrize("state,reason,silent_ms", [("finished", "silence", 210), ("doubtful", "doubt_pause", 510),
                                                     ("unfinished", "long_pause", 1290), (True, "silence", 210)])
def test_end_of_turn_verdict_sets_the_wait(state, reason, silent_ms, tmp_path):
    ep = Endpointer(HearingSettings(vad_hangover_ms=210, turn_doubt_silence_ms=500, turn_max_silence_ms=1300))
    asked = []
    ep.end_of_turn = lambda: asked.append(1) or (None if len(asked) < 3 else state)  # undecided twice (still decoding)
    pcm = synth("where is the meeting room", tmp_path / "s.wav", "mb-us2")
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), pcm, np.zeros(2 * RATE, np.int16)])
    pcm = np.clip(pcm + np.random.default_rng(1).normal(0, 10, len(pcm)), -32768, 32767).astype(np.int16)
    edges = [(i, ep.process(pcm[i:i + 480], i * 1_000_000_000 // RATE)) for i in range(0, len(pcm) - 480, 480)]
    edges = [(i, e) for i, e in edges if e is not None and e.event in ("started", "ended")]
    assert [e.event for _, e in edges] == ["started", "ended"] and len(asked) == 3, edges
    i, end = edges[1]
    assert end.reason == reason, end
    # The turn ended at the verdict's wait after the last voiced frame (the undecided asks took 60 ms).
    waited_ms = (i + 480) / RATE * 1000 - end.at_ns / 1e6
    assert abs(waited_ms - max(silent_ms, 270)) <= 30, waited_ms


def test_the_hearing_section_configures_the_endpointer_and_the_pipeline():
    # The engines take the section itself: a key set there reaches them, with the schema's defaults elsewhere.
    base = HearingSettings()
    assert Endpointer(base).hang_frames == 7  # 210 ms in 30 ms frames
    slow = msgspec.structs.replace(base, vad_hangover_ms=600, vad_frame_ms=20, turn_continue_ms=0, activity_batch_ms=100,
                                   aec=False, end_of_turn="silence")
    ep = Endpointer(slow)
    assert ep.hang_frames == 30 and ep.frame_len == 320 and ep.max_hang_frames == 65  # 1300 ms / 20 ms
    pipeline = HearingPipeline(slow, _Recorder(), lambda ev: None)
    assert pipeline.endpointer.hang_frames == 30 and pipeline.endpointer.end_of_turn is None
    assert pipeline.echo is None and pipeline.continue_ns == 0 and pipeline.activity_frames == 5
    assert HearingPipeline(base, _Recorder(), lambda ev: None).endpointer.end_of_turn is not None  # "words"


class _Recorder(SttEngine):
    """An STT engine that hears nothing and records how long each end-of-turn ``peek`` may wait."""

    name = "recorder"

    def __init__(self) -> None:
        self.waits: list[float | None] = []
        self.fed = 0

    def start(self) -> None:
        pass

    def feed(self, pcm: np.ndarray) -> None:
        self.fed += len(pcm)

    def finish(self) -> Result:
        return Result("", 0.0)

    def peek(self, timeout: float | None = None) -> Result | None:
        self.waits.append(timeout)
        return Result("where is the meeting room", 0.9, [WordTime("room", 0.0, 0.3, 0.9)])


@pytest.fixture(scope="module")
def sentence(tmp_path_factory):
    pcm = synth("where is the meeting room", tmp_path_factory.mktemp("s") / "s.wav")
    pcm = np.concatenate([np.zeros(RATE // 2, np.int16), pcm, np.zeros(RATE, np.int16)])
    return np.clip(pcm + np.random.default_rng(1).normal(0, 10, len(pcm)), -32768, 32767).astype(np.int16)


def chunks(pcm: np.ndarray):
    return [AudioChunk(pcm[i:i + 320], T0 + i * 1_000_000_000 // RATE) for i in range(0, len(pcm), 320)]


def test_fed_synchronously_the_end_of_turn_check_waits_for_the_decode(sentence):
    rec, events = _Recorder(), []
    pipeline = HearingPipeline(HearingSettings(), rec, events.append)
    for chunk in chunks(sentence):
        pipeline.process(chunk)
    assert rec.waits and all(w is None for w in rec.waits), rec.waits  # offline: as if the decode took no time
    assert [type(e) for e in events if isinstance(e, (SpeechStarted, Final))] == [SpeechStarted, Final]


def test_started_on_the_services_workers_it_never_blocks_and_stop_drains_the_queue(sentence):
    workers = Workers("hearing-test")
    rec, events = _Recorder(), []
    pipeline = HearingPipeline(HearingSettings(), rec, events.append, workers=workers)
    pipeline.start()
    assert workers.alive == ["hearing-pipeline"]
    for chunk in chunks(sentence):
        pipeline.push(chunk)
    pipeline.stop(timeout=30)  # the queued chunks are processed before the worker ends
    assert workers.alive == []
    assert pipeline.stats.audio_s == pytest.approx(len(sentence) / RATE) and pipeline.stats.dropped_chunks == 0
    assert pipeline.snapshot.audio_s == pipeline.stats.audio_s  # the copy the heartbeat reads
    assert rec.waits and all(w == 0.0 for w in rec.waits), rec.waits  # live: ask again next frame, never wait
    assert [type(e) for e in events if isinstance(e, (SpeechStarted, Final))] == [SpeechStarted, Final]


def test_built_alone_it_runs_on_a_private_worker_group():
    pipeline = HearingPipeline(HearingSettings(), _Recorder(), lambda ev: None)
    pipeline.start()
    try:
        assert pipeline._workers.alive == ["hearing-pipeline"]
    finally:
        pipeline.stop()
    assert pipeline._workers.alive == []


def test_the_service_holds_microphone_pipeline_and_engine_and_releases_them_in_reverse(monkeypatch):
    # No bus: setup alone, then the exit stack the runtime closes at shutdown. The microphone stops
    # first (no chunk after the pipeline's last), the pipeline drains, then the engine closes.
    from assistant.config import Config
    from hardware.microphone import FileMicrophone
    from services.hearing.service import HearingService

    order = []
    for cls, name in ((FileMicrophone, "stop"), (HearingPipeline, "stop"), (PocketSphinxEngine, "close")):
        real = getattr(cls, name)
        monkeypatch.setattr(cls, name, lambda self, *a, _real=real, _cls=cls, **kw: (order.append(_cls.__name__), _real(self, *a, **kw))[1])
    config = Config(hearing=HearingSettings(engine="pocketsphinx", mic_device="sim", activity_batch_ms=0))
    service = HearingService(config)
    service.setup()
    assert isinstance(service.mic, FileMicrophone) and service.workers.alive == ["hearing-pipeline"]
    assert order == []
    service.resources.close()
    assert order == ["FileMicrophone", "HearingPipeline", "PocketSphinxEngine"]
    assert service.workers.alive == []  # the pipeline worker was joined by its stop
