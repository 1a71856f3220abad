"""PocketSphinx 5: the default engine; its wheel ships a US English acoustic model, LM and dictionary."""

from __future__ import annotations

import logging
import re

import numpy as np

from .base import EngineError, Result, SttEngine, WordTime

log = logging.getLogger(__name__)

_FILLERS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]"}
_FRAME_S = 0.01  # pocketsphinx's default frame rate is 100 frames per second


class PocketSphinxEngine(SttEngine):
    name = "pocketsphinx"
    lang = "en-us"

    def __init__(self, *, hmm: str = "", lm: str = "", dict_: str = "", grammar: bool = False) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise EngineError("pocketsphinx is not installed; pip install 'embodied-assistant[hearing]'") from None
        # fwdflat off: its second pass costs ~200 ms at the end of an utterance for a small gain;
        # bestpath stays on for word posteriors (our confidences) at ~10-50 ms.
        kw = dict(samprate=16000, loglevel="FATAL", fwdflat=False, bestpath=True)
        kw.update({k: v for k, v in (("hmm", hmm), ("lm", lm), ("dict", dict_)) if v})
        try:
            self.dec = Decoder(**kw)
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"pocketsphinx could not load its model ({exc}); check hearing.pocketsphinx_hmm/_lm/_dict "
                              "or leave them empty for the US English model bundled with the pocketsphinx wheel") from None
        self.grammar = grammar
        self._in_utt = False

    @classmethod
    def from_settings(cls, s) -> "PocketSphinxEngine":
        return cls(hmm=s.pocketsphinx_hmm, lm=s.pocketsphinx_lm, dict_=s.pocketsphinx_dict, grammar=s.grammar)

    def set_phrases(self, phrases: list[str]) -> None:
        """In grammar mode, restrict recognition to the phrases (words missing from the dictionary are dropped)."""
        if not self.grammar:
            return
        usable = []
        for phrase in phrases:
            words = [w for w in re.findall(r"[a-z']+", phrase.lower())]
            missing = [w for w in words if self.dec.lookup_word(w) is None]
            if missing:
                log.warning("phrase %r dropped: not in the pocketsphinx dictionary: %s", phrase, ", ".join(missing))
            elif words:
                usable.append(" ".join(words))
        if not usable:
            self.dec.activate_search("_default")
            return
        jsgf = "#JSGF V1.0;\ngrammar kiosk;\npublic <utt> = <phrase>+;\n<phrase> = " + " | ".join(f"( {p} )" for p in usable) + ";\n"
        self.dec.add_jsgf_string("kiosk", jsgf)
        self.dec.activate_search("kiosk")

    def start(self) -> None:
        if self._in_utt:
            self.dec.end_utt()
        self.dec.start_utt()
        self._in_utt = True

    def feed(self, pcm: np.ndarray) -> None:
        self.dec.process_raw(np.ascontiguousarray(pcm, dtype=np.int16).tobytes(), False, False)

    def partial(self) -> str:
        hyp = self.dec.hyp()
        return hyp.hypstr if hyp is not None else ""

    def finish(self) -> Result:
        self.dec.end_utt()
        self._in_utt = False
        hyp = self.dec.hyp()
        words = []
        for seg in self.dec.seg():
            if seg.word in _FILLERS or seg.word.startswith("+"):
                continue
            text = re.sub(r"\(\d+\)$", "", seg.word)  # alternate pronunciations: "the(2)"
            words.append(WordTime(text, seg.start_frame * _FRAME_S, (seg.end_frame + 1) * _FRAME_S, float(min(1.0, max(0.0, seg.prob)))))
        text = hyp.hypstr if hyp is not None else ""
        conf = float(np.mean([w.confidence for w in words])) if words else 0.0
        return Result(text, conf, words)
