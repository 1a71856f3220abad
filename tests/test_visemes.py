import numpy as np

from assistant.face.driver import MouthDriver
from assistant.face.geometry import mouth_opening, mouth_width
from assistant.face.visemes import VisemeDriver, guess_alphabet, viseme_of
from assistant.messages import Phoneme


def seq(labels, dur=0.12, start=0.2):
    return [Phoneme(lab, start + i * dur, dur) for i, lab in enumerate(labels)]


def test_protocol_and_shape():
    d: MouthDriver = VisemeDriver()
    out = d.drive(np.zeros(16000, np.int16), 16000, 30, seq(["HH", "AA1", "P"]), "arpabet")
    assert out.shape == (30, 20, 2) and out.dtype == np.float32


def test_open_vowel_opens_bilabial_closes():
    d = VisemeDriver()
    ph = seq(["M", "AA1", "AA1", "P", "AA1"], 0.12)
    o = mouth_opening(d.drive(np.zeros(32000), 16000, 25, ph, "arpabet"))
    t = lambda s: int(s * 25)  # noqa: E731
    assert o[t(0.38)] > 0.12  # middle of the /a/s
    assert o[t(0.56)] < o[t(0.38)] * 0.5  # /p/ pulls the lips together
    assert o[-1] < 0.02 and o[0] < 0.02  # silence before and after


def test_anticipates_instead_of_snapping():
    d = VisemeDriver()
    o = mouth_opening(d.drive(np.zeros(16000), 16000, 100, seq(["AA"], 0.3, 0.5), "arpabet"))
    assert o[48] > o[40] > 0.015  # already opening before the vowel starts at frame 50
    assert np.max(np.abs(np.diff(o))) < 0.06  # no jumps between 10 ms frames


def test_espeak_and_arpabet_agree_on_rounding():
    d = VisemeDriver()
    es = d.drive(np.zeros(16000), 16000, 25, seq(["w", "'u:", "u:"]), "espeak")
    ar = d.drive(np.zeros(16000), 16000, 25, seq(["W", "UW1", "UW1"]), "arpabet")
    spread = d.drive(np.zeros(16000), 16000, 25, seq(["IY1", "IY1", "IY1"]), "arpabet")
    assert np.allclose(es, ar, atol=1e-5)
    assert mouth_width(ar)[12] < mouth_width(spread)[12]


def test_labels_hostile_and_unknown():
    assert viseme_of("+NSN+", "arpabet") == "sil"
    assert viseme_of("_:", "espeak") == "sil" and viseme_of("'aI", "espeak") == "aa"
    assert viseme_of("@U", "sampa") == "oh" and viseme_of("", "espeak") == "sil"
    assert guess_alphabet(["HH", "AH0", "L"]) == "arpabet" and guess_alphabet(["h", "@", "l"]) == "espeak"
    out = VisemeDriver().drive(np.zeros(8000), 16000, 25, seq(["§", "\x00", "zz9", "OW2"]), "")
    assert np.isfinite(out).all() and out.shape == (13, 20, 2)
    assert np.allclose(VisemeDriver().drive(np.zeros(8000), 16000, 25), VisemeDriver.neutral, atol=1e-6)
