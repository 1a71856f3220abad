"""espeak-ng through ctypes: real synthesis, phoneme timings, languages, hostile text."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from services.voice.tts.base import TtsError

REPO = Path(__file__).resolve().parents[2]


def test_speaks_english_with_phoneme_timings(espeak):
    s = espeak.synthesize("Hello, what time is it?")
    assert s.engine == "espeak-ng" and s.alphabet == "espeak" and s.pcm.dtype == np.int16
    assert 0.8 < s.duration_s < 3.0
    assert np.abs(s.pcm).max() > 3000, "real speech, not near-silence"
    labels = [p.label.strip("',") for p in s.phonemes]
    assert labels[:3] == ["h", "@", "l"], labels  # "hello" = h @ l oU
    starts = [p.start_s for p in s.phonemes]
    assert starts == sorted(starts)
    end = s.phonemes[-1].start_s + s.phonemes[-1].dur_s
    assert end == pytest.approx(s.duration_s, abs=1e-3)
    # Timings match the audio: the signal inside the first voiced phonemes is louder than
    # inside the pause phonemes ("_:").
    rate = s.sample_rate
    pcm = s.pcm.astype(np.float64)

    def rms(p):
        seg = pcm[int(p.start_s * rate):int((p.start_s + p.dur_s) * rate)]
        return float(np.sqrt(np.mean(seg**2))) if seg.size else 0.0

    vowels = [rms(p) for p in s.phonemes if p.label.strip("',") in ("oU", "aI", "I") and p.dur_s > 0.03]
    pauses = [rms(p) for p in s.phonemes if p.label.startswith("_") and p.dur_s > 0.03]
    assert vowels and pauses and min(vowels) > 5 * max(pauses)


def test_other_languages_and_unsupported(espeak):
    cs = espeak.synthesize("Dobrý den, jak se máte?", lang="cs")
    assert cs.voice == "cs" and cs.duration_s > 0.5
    assert espeak.voice_id("en-GB") == "en-gb"
    assert espeak.voice_id("de-AT") == "de"  # dialect it lacks: the base language
    with pytest.raises(TtsError, match="does not speak language 'xx'") as err:
        espeak.synthesize("hello", lang="xx")
    assert err.value.permanent


@pytest.mark.parametrize("text", ["", "   ", "😀🎉", "?!..."])
def test_nothing_to_say_is_a_clear_error(espeak, text):
    with pytest.raises(TtsError, match="nothing to say") as err:
        espeak.synthesize(text)
    assert err.value.permanent


def test_long_and_hostile_text(espeak):
    long = ("The quick brown fox jumps over the lazy dog. " * 112)[:5000]
    s = espeak.synthesize(long)
    assert s.duration_s > 200  # ~870 words at 165 wpm
    odd = espeak.synthesize("Null \x00 byte, <b>tags</b> & emoji 😀 — ok 🇨🇿.")
    assert odd.duration_s > 0.5


def test_thread_safe_under_concurrency(espeak):
    # espeak-ng output varies by a few samples from call to call (carried-over state), so
    # compare what was said (the phoneme sequence) and the length, not the samples.
    texts = [f"Sentence number {i} is here." for i in range(8)]
    alone = {t: espeak.synthesize(t) for t in texts}
    results = {}

    def run(t):
        results[t] = espeak.synthesize(t)

    threads = [threading.Thread(target=run, args=(t,)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in texts:
        assert [p.label for p in results[t].phonemes] == [p.label for p in alone[t].phonemes]
        assert len(results[t].pcm) == pytest.approx(len(alone[t].pcm), rel=0.02), "audio must not mix"


MBROLA_PROBE = r"""
import json, sys
from assistant.config.schema import VoiceEspeakSettings
from services.voice.tts.espeak import EspeakEngine
from pocketsphinx import Decoder
e = EspeakEngine(VoiceEspeakSettings(voice="mb-us2"))
s = e.synthesize("hello what time is it today")
d = Decoder(samprate=s.sample_rate, loglevel="FATAL")
d.start_utt(); d.process_raw(s.pcm.tobytes(), full_utt=True); d.end_utt()
print(json.dumps({"rate": s.sample_rate, "voice": s.voice, "n": len(s.phonemes), "hyp": d.hyp().hypstr}))
"""


def test_mbrola_voice_is_recognisable():
    """MBROLA needs Debian's libespeak-ng (one library per process): run it in a subprocess."""
    if not Path("/usr/share/mbrola/us2").is_dir():
        pytest.skip("mbrola-us2 is not installed (apt-get install mbrola mbrola-us2)")
    out = subprocess.run([sys.executable, "-c", MBROLA_PROBE], cwd=REPO, capture_output=True, text=True,
                         timeout=60, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    import json

    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rate"] == 16000 and got["voice"] == "mb-us2" and got["n"] > 10
    assert got["hyp"].startswith("hello what time is it"), got


def test_one_binding_serves_the_voice_and_the_lipsync_data():
    """``assistant.espeak`` is the one way in: the lip-sync data maker shares the voice's library."""
    from assistant import espeak
    from models.lipsync.espeak import Espeak
    from services.voice.tts.espeak import EspeakEngine

    voice = EspeakEngine()
    lips = Espeak()
    assert lips._lib is voice._lib is espeak.load()
    pcm, rate, phonemes = lips.say("Hello there.", "en", rate=175)
    syn = voice.synthesize("Hello there.")  # the voice sets its own voice and rate back
    assert pcm.dtype == np.float32 and rate == syn.sample_rate and phonemes
    assert not any(p.label.startswith("(") for p in phonemes)
    with pytest.raises(ValueError, match="no voice"):
        lips.say("x", "no-such-voice")
    again = voice.synthesize("Hello there.")  # the failed switch left no stale voice behind
    assert [p.label for p in again.phonemes] == [p.label for p in syn.phonemes] and again.voice == syn.voice


def test_the_program_writes_a_wav_and_its_absence_is_said(tmp_path, monkeypatch):
    from assistant import espeak

    if espeak.program() is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    slow = espeak.write_wav("Hello there, how are you.", tmp_path / "slow.wav", "en", args=["-s", "100"])
    fast = espeak.write_wav("Hello there, how are you.", tmp_path / "fast.wav", "en", args=["-s", "300"])
    assert slow.returncode == fast.returncode == 0
    assert (tmp_path / "slow.wav").stat().st_size > 1.8 * (tmp_path / "fast.wav").stat().st_size, "args reach the program"
    monkeypatch.setattr(espeak.shutil, "which", lambda _: None)
    with pytest.raises(FileNotFoundError, match="apt-get install espeak-ng"):
        espeak.write_wav("Hello.", tmp_path / "y.wav")
