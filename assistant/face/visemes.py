"""Phoneme timings -> mouth landmarks: viseme targets blended by a dominance model (numpy only).

Each phoneme maps to a viseme (``VISEMES``: opening, width, rounding for
``assistant.face.mouth_shapes.articulate``). Coarticulation follows Cohen & Massaro (1993):
every segment exerts a dominance that decays exponentially from its centre, and each frame is
the dominance-weighted mean of the targets around it. So the mouth anticipates the next sound
and blends across short ones instead of snapping; bilabials (p b m) and labiodentals (f v)
dominate strongly, so lips still close for them inside fast speech.

Alphabets: ``arpabet`` (pocketsphinx, CMUdict; stress digits ignored), ``espeak`` (espeak-ng
phoneme mnemonics as its phoneme events give them, any language), ``sampa`` (MBROLA voices),
``ipa`` (Piper voices: espeak-ng's IPA, one phoneme per label, stress marks already folded in).
An empty alphabet guesses from the labels.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from assistant.messages import Phoneme

from .audio_features import n_video_frames
from .mouth_shapes import NEUTRAL_MOUTH, articulate

log = logging.getLogger(__name__)

# viseme: (opening, width, rounding, dominance). Openings are inner-lip gaps in canonical units
# (GRID speakers peak near 0.15-0.3); dominance > 1 means "this shape must be reached".
VISEMES: dict[str, tuple[float, float, float, float]] = {
    "sil": (0.0, 0.0, 0.0, 0.6),
    "PP": (0.0, 0.0, 0.0, 3.0),   # p b m: lips closed
    "FF": (0.02, 0.0, 0.0, 2.0),  # f v: lower lip to upper teeth
    "TH": (0.06, 0.02, 0.0, 1.0),
    "DD": (0.07, 0.03, 0.0, 0.7),  # t d n l
    "kk": (0.08, 0.0, 0.0, 0.6),  # k g ng
    "CH": (0.06, -0.1, 0.6, 1.2),  # sh zh ch jh
    "SS": (0.04, 0.06, 0.0, 1.0),  # s z
    "RR": (0.05, -0.08, 0.5, 1.0),
    "WW": (0.03, -0.2, 1.0, 1.5),  # w and the glide of ou
    "YY": (0.05, 0.06, 0.0, 0.8),
    "HH": (0.10, 0.0, 0.0, 0.3),  # h takes the shape of its vowel
    "aa": (0.22, 0.04, 0.0, 1.0),
    "ae": (0.18, 0.08, 0.0, 1.0),
    "E": (0.13, 0.08, 0.0, 1.0),
    "ih": (0.08, 0.1, 0.0, 0.9),
    "iy": (0.06, 0.12, 0.0, 1.0),
    "oh": (0.15, -0.12, 0.7, 1.0),
    "uw": (0.06, -0.18, 0.9, 1.1),
    "@": (0.10, 0.0, 0.0, 0.7),   # schwa and other reduced vowels
    "er": (0.08, -0.05, 0.3, 0.9),
}

ARPABET = {
    "SIL": "sil", "SP": "sil", "": "sil", "B": "PP", "P": "PP", "M": "PP", "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH", "T": "DD", "D": "DD", "N": "DD", "L": "DD", "K": "kk", "G": "kk",
    "NG": "kk", "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH", "S": "SS", "Z": "SS", "R": "RR",
    "W": "WW", "Y": "YY", "HH": "HH", "AA": "aa", "AW": "aa", "AY": "aa", "AE": "ae", "EH": "E",
    "EY": "E", "IH": "ih", "IY": "iy", "AO": "oh", "OW": "oh", "OY": "oh", "UH": "uw", "UW": "uw",
    "AH": "@", "AX": "@", "ER": "er",
}

# espeak-ng mnemonics and MBROLA SAMPA share most symbols. Longest prefix wins; a label that
# matches nothing falls back by its first letter (vowel letters -> schwa, others -> DD).
_SAMPA = {
    "_": "sil", "p": "PP", "b": "PP", "m": "PP", "f": "FF", "v": "FF", "T": "TH", "D": "TH",
    "t": "DD", "d": "DD", "n": "DD", "l": "DD", "L": "DD", "k": "kk", "g": "kk", "N": "kk",
    "x": "kk", "q": "kk", "c": "kk", "tS": "CH", "dZ": "CH", "S": "CH", "Z": "CH", "ts": "SS",
    "dz": "SS", "s": "SS", "z": "SS", "r": "RR", "R": "RR", "w": "WW", "j": "YY", "J": "YY",
    "h": "HH", "H": "HH", "a": "aa", "A": "aa", "aI": "aa", "aU": "aa", "{": "ae", "&": "ae",
    "e": "E", "E": "E", "eI": "E", "eU": "E", "I": "ih", "i": "iy", "y": "uw", "Y": "uw",
    "o": "oh", "O": "oh", "0": "oh", "oU": "oh", "OI": "oh", "@U": "oh", "u": "uw", "U": "uw",
    "V": "@", "@": "@", "3": "er", "a#": "@", "W": "uw", "9": "oh", "2": "oh",
}
_VOWEL_LETTERS = set("aeiouAEIOUV@3{&0y")

# IPA as Piper's phonemizer (espeak-ng) writes it. Affricates are two labels (t + ʃ), which the
# dominance model blends; diphthongs arrive as two vowels (a + ɪ) and glide the same way.
_IPA = {
    "_": "sil", "p": "PP", "b": "PP", "m": "PP", "ɱ": "FF", "f": "FF", "v": "FF", "ʋ": "FF", "ɸ": "FF",
    "β": "FF", "θ": "TH", "ð": "TH", "t": "DD", "d": "DD", "n": "DD", "l": "DD", "ɾ": "DD", "ɫ": "DD",
    "ɬ": "DD", "ɮ": "DD", "ʈ": "DD", "ɖ": "DD", "ɳ": "DD", "ɭ": "DD", "ʔ": "DD", "ɲ": "YY", "ʎ": "YY",
    "k": "kk", "ɡ": "kk", "g": "kk", "ŋ": "kk", "x": "kk", "ɣ": "kk", "q": "kk", "ɢ": "kk", "ɴ": "kk",
    "c": "kk", "ɟ": "kk", "χ": "kk", "ʁ": "RR", "ʀ": "RR", "ʃ": "CH", "ʒ": "CH", "ɕ": "CH", "ʑ": "CH",
    "ç": "CH", "ʂ": "CH", "ʐ": "CH", "ʧ": "CH", "ʤ": "CH", "s": "SS", "z": "SS", "ʦ": "SS", "ɹ": "RR",
    "r": "RR", "ɻ": "RR", "ɽ": "RR", "w": "WW", "ʍ": "WW", "ɥ": "WW", "j": "YY", "ʝ": "YY", "h": "HH",
    "ɦ": "HH", "ħ": "HH", "a": "aa", "ɑ": "aa", "ɐ": "aa", "æ": "ae", "e": "E", "ɛ": "E", "ɪ": "ih",
    "ɨ": "ih", "ᵻ": "ih", "i": "iy", "y": "uw", "ʏ": "uw", "o": "oh", "ɔ": "oh", "ɒ": "oh", "ø": "oh",
    "œ": "oh", "ɶ": "oh", "ɵ": "oh", "u": "uw", "ʊ": "uw", "ʉ": "uw", "ɯ": "uw", "ə": "@", "ʌ": "@",
    "ɘ": "@", "ɤ": "@", "ɞ": "@", "ɚ": "er", "ɝ": "er", "ɜ": "er", "tʃ": "CH", "dʒ": "CH", "ts": "SS",
    "dz": "SS",
}
_IPA_VOWELS = set("aeiouyæɑɐɛɪɨᵻɔɒøœɶɵʊʉɯəʌɘɤɞɚɝɜ")
# Stress, length, tone and diacritics: they change a phoneme's timing or quality, not its viseme.
_IPA_MARKS = re.compile(r"[ˈˌːˑ˞ʰʲʷˤ\u0300-\u036f↑↓#\d]")


def guess_alphabet(labels: Sequence[str]) -> str:
    """``arpabet`` when every label is an ARPAbet symbol (stress digits allowed), else ``espeak``."""
    core = [re.sub(r"\d$", "", lab) for lab in labels if lab]
    return "arpabet" if core and all(c.upper() == c and c in ARPABET for c in core) else "espeak"


def viseme_of(label: str, alphabet: str) -> str:
    """The viseme name for one phoneme label."""
    if alphabet == "arpabet":
        lab = re.sub(r"\d$", "", label.strip().upper())
        if lab.startswith("+") or lab in ("SIL", "SP", "<S>", "</S>", "<SIL>"):
            return "sil"
        return ARPABET.get(lab, "DD")
    if alphabet == "ipa":
        lab = _IPA_MARKS.sub("", label.strip())
        if not lab or lab[0] in "_^$ .,;:!?-":
            return "sil"
        return _IPA.get(lab[:2]) or _IPA.get(lab[0], "@" if lab[0] in _IPA_VOWELS else "DD")
    lab = re.sub(r"[ˈˌ'\",%=:;!^|#*~-]", "", label.strip()) or "_"
    if lab.startswith("_") or not lab:
        return "sil"
    for n in range(min(3, len(lab)), 0, -1):
        if lab[:n] in _SAMPA:
            return _SAMPA[lab[:n]]
    return "@" if lab[0] in _VOWEL_LETTERS else "DD"


@dataclass(frozen=True)
class CoarticulationConfig:
    """Shape of the dominance functions."""

    rate: float = 45.0
    """Decay per second away from a segment's edges: ~25 ms to fall to 1/e, so a neighbour's
    shape leaks ~2 frames at 25 fps, as measured coarticulation spans."""
    lead_s: float = 0.03
    """Mouth leads the sound: lips reach a target ~30 ms before its acoustic centre."""
    articulation: float = 1.0
    """Scales every opening/width/rounding (a mumbling vs. an emphatic speaker)."""


def viseme_parameters(
    phonemes: Sequence[Phoneme], alphabet: str, n_frames: int, fps: float,
    cfg: CoarticulationConfig = CoarticulationConfig(),
) -> np.ndarray:
    """(n_frames, 3) opening, width, rounding per frame (silence before, between and after)."""
    t = np.arange(n_frames) / fps + cfg.lead_s
    if not phonemes:
        return np.zeros((n_frames, 3), np.float32)
    alphabet = alphabet or guess_alphabet([p.label for p in phonemes])
    names = [viseme_of(p.label, alphabet) for p in phonemes]
    table = np.array([VISEMES[n] for n in names])
    targets, strength = table[:, :3], table[:, 3]
    start = np.array([p.start_s for p in phonemes])
    end = start + np.maximum([p.dur_s for p in phonemes], 1e-3)
    # Distance from each frame to each segment (0 inside it), then exponential dominance.
    dist = np.maximum(0.0, np.maximum(start[None, :] - t[:, None], t[:, None] - end[None, :]))
    dom = strength[None, :] * np.exp(-cfg.rate * dist)
    # Silence outside the utterance's phonemes, so the mouth closes before and after.
    into_speech = np.maximum(0.0, np.minimum(t - start.min(), end.max() - t))  # 0 outside the span
    rest = VISEMES["sil"][3] * np.exp(-cfg.rate * into_speech)
    num = dom @ targets
    den = dom.sum(axis=1) + rest + 1e-9
    return (num / den[:, None] * cfg.articulation).astype(np.float32)


class VisemeDriver:
    """``MouthDriver`` from phoneme timings; the audio only sets the number of frames."""

    name = "viseme"
    neutral = NEUTRAL_MOUTH

    def __init__(self, cfg: CoarticulationConfig = CoarticulationConfig()) -> None:
        self.cfg = cfg

    def drive(self, pcm, sample_rate, fps, phonemes=None, alphabet=""):
        n = n_video_frames(len(np.asarray(pcm)), sample_rate, fps)  # (samples,) or (samples, channels)
        if not phonemes:
            log.debug("viseme driver got no phonemes; mouth stays at rest")
        params = viseme_parameters(list(phonemes or []), alphabet, n, fps, self.cfg)
        return articulate(params[:, 0], params[:, 1], params[:, 2])
