import shutil
from pathlib import Path

import numpy as np
import pytest

from assistant.face.geometry import mouth_opening

pytest.importorskip("espeakng_loader")
pytest.importorskip("soxr")

from models.lipsync.synth import breath_clip, grid_sentence, mbrola_clip, mouth_track  # noqa: E402
from models.lipsync.config import GRID_TRANSCRIPTS, GridSplit  # noqa: E402


@pytest.fixture(scope="module")
def tts():
    from models.lipsync.espeak import Espeak

    return Espeak()


def test_espeak_phoneme_events_cover_the_audio(tts):
    pcm, rate, ph = tts.say("bob saw a big blue boat", "en-us+f3", rate=180, pitch=60)
    dur = len(pcm) / rate
    assert 1.0 < dur < 3.0 and len(ph) > 10
    starts = np.array([p.start_s for p in ph])
    assert np.all(np.diff(starts) >= 0) and starts[-1] < dur
    assert not any(p.label.startswith("(") for p in ph)
    track = mouth_track(ph, "espeak", int(dur * 25) + 1, np.random.default_rng(0))
    o = mouth_opening(track)
    assert o.max() > 0.08 and o[0] < 0.03  # opens for the vowels, starts closed


def test_unknown_voice_is_a_clear_error(tts):
    with pytest.raises(ValueError, match="no voice"):
        tts.say("hello", "xx-nonexistent")


@pytest.mark.skipif(not (shutil.which("mbrola") and shutil.which("espeak-ng")), reason="apt: mbrola mbrola-us2")
def test_mbrola_clip_is_aligned():
    clip = mbrola_clip("hello what time is it", "us2", np.random.default_rng(1), "t")
    assert abs(len(clip.mouth) - len(clip.audio) / 16000 * 25) <= 1
    assert mouth_opening(clip.mouth).max() > 0.08


def test_breath_and_heldout_sentences():
    clip = breath_clip(np.random.default_rng(2), "b")
    o = mouth_opening(clip.mouth)
    assert 0.02 < o.max() < 0.09 and o[0] < 0.02
    rng = np.random.default_rng(0)
    held = {GRID_TRANSCRIPTS[n] for n in GridSplit().heldout}
    assert not held & {grid_sentence(rng) for _ in range(3000)}


def test_pocketsphinx_alignment_matches_reference(shared_data):
    import json

    import soundfile as sf

    from models.lipsync.align import align_phonemes

    base = shared_data / "speech" / "librivox" / "sense_and_sensibility_01_austen_64kb-0870"
    audio, rate = sf.read(str(base) + ".wav", dtype="float32")
    ref = [p for w in json.loads(Path(str(base) + ".phone.json").read_text())["w"] for p in w["w"]]
    got = align_phonemes(audio, Path(str(base) + ".txt").read_text().strip())
    first_m = next(p for p in got if p.label == "M")
    ref_m = next(p for p in ref if p["t"] == "M")
    assert abs(first_m.start_s - ref_m["b"]) < 0.05
