"""Piper: a neural voice offline (VITS through onnxruntime on the CPU), with phoneme timings.

Piper turns text into IPA phonemes with its own copy of espeak-ng, then the voice's ONNX model
into audio. The model decides every phoneme's duration; exposing that tensor (``w_ceil``, the
frames per phoneme id) as a graph output gives per-phoneme sample counts that sum to the audio's
length exactly, 256 samples (11.6 ms at 22,050 Hz) apart. ``piper.patch_voice_with_alignment``
does that in memory with the ``onnx`` package; without it the voice speaks without timings and
the renderer animates the mouth from the audio, as for gTTS.

Piper's phonemes are code points: stress marks (``ˈ``) before a vowel, length marks (``ː``)
after it, spaces between words and punctuation for pauses. ``timed_phonemes`` folds them into
phonemes the face can use: a stress mark's time goes to the vowel it stresses, a length mark's
and a word space's to the phoneme before, punctuation and the sentence's start and end become
pauses (``_``).

Threads: the deadline (``deadline_s``) is a ``threading.Timer``, a one-shot timer thread that only
sets the run's ``terminate`` flag; it is cancelled when the synthesis ends, so it needs no worker.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from assistant.messages.voice import Phoneme

from assistant.config.schema import VoicePiperSettings

from .base import Synthesis, TtsError, check_text
from .piper_text import speakable
from .piper_voices import VoiceFiles, VoiceFileError, find_voice, language_match

log = logging.getLogger(__name__)

_STRESS = {"ˈ", "ˌ"}
_PAUSES = set("^$.,;:!?-()'\"#_")
_SUFFIX = {"ː", "ˑ", "˞", "ʰ", "ʲ", "ʷ", "ˤ"}
PIPER_SCALES = (1.0, 0.667, 0.8)
"""Piper's own (length, noise, noise_w) scales: a voice id without a suffix means these."""


class _CancellableSession:
    """An ``InferenceSession`` whose runs take the calling thread's ``RunOptions`` (Piper passes none),
    so a synthesis past its deadline can be terminated from a timer."""

    def __init__(self, session) -> None:
        self._session = session
        self.local = threading.local()

    def run(self, outputs, feeds, run_options=None):
        return self._session.run(outputs, feeds, getattr(self.local, "options", None) or run_options)

    def __getattr__(self, name):
        return getattr(self._session, name)


@dataclass
class _Loaded:
    files: VoiceFiles
    voice: object  # piper.PiperVoice, on a _CancellableSession
    timed: bool
    """The model gives phoneme durations (patched for alignments)."""


class PiperEngine:
    """Piper voices, loaded on first use (or by ``load``). Thread-safe."""

    name = "piper"
    local = True
    """Runs on this CPU: a missed deadline means a busy machine, not an unreachable engine (no back-off)."""

    def __init__(self, settings: VoicePiperSettings = VoicePiperSettings(), lang: str = "en",
                 deadline_s: float = 0.0) -> None:
        """``settings``: ``voice.piper``. ``lang``: picks the voice when a request names none
        (``voice.lang``). ``deadline_s``: abandon a synthesis (stop onnxruntime) after this long; 0:
        never. The failover chain stops waiting at its own deadline anyway; this frees the CPU too,
        so runs the chain gave up on do not pile up on a busy machine."""
        try:
            from piper import SynthesisConfig
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("Piper is not installed: pip install --no-deps piper-tts==1.8.0 and "
                              "'embodied-assistant[voice]' (make setup does both)") from exc
        self.settings = s = settings
        self.lang, self.deadline_s = lang, deadline_s
        self._config = SynthesisConfig(length_scale=s.length_scale, noise_scale=s.noise_scale,
                                       noise_w_scale=s.noise_w_scale)
        scales = (s.length_scale, s.noise_scale, s.noise_w_scale)
        self._scales = "" if scales == PIPER_SCALES else "@" + ",".join(f"{x:g}" for x in scales)
        """Suffix of the voice id: the synthesis scales when not Piper's own (they change the audio, and
        a cache entry made with other scales must not be played)."""
        self._voices: dict[str, _Loaded] = {}
        self._files: dict[str, VoiceFiles] = {}  # spec -> files, found once
        self._lock = threading.Lock()

    # -- voices ---------------------------------------------------------------------------

    def _specs(self) -> list[str]:
        return [self.settings.voice, *self.settings.extra_voices]

    def _find(self, spec: str) -> VoiceFiles:
        with self._lock:
            files = self._files.get(spec)
        if files is None:
            files = find_voice(spec)  # raises VoiceFileError naming the file and the fix
            with self._lock:
                self._files[spec] = files
        return files

    def voices(self) -> list[VoiceFiles]:
        """The configured voices that are there (missing ones are left out; ``load`` says why)."""
        found = []
        for spec in self._specs():
            try:
                found.append(self._find(spec))
            except VoiceFileError:
                continue
        return found

    def _choose(self, lang: str, voice: str) -> VoiceFiles:
        if voice:
            for spec in self._specs():
                if voice == spec:
                    return self._find(spec)
            for files in self.voices():
                if voice in (files.name, files.model.parent.name):
                    return files
            raise TtsError(f"Piper has no voice {voice!r} (voice.piper.voice / extra_voices)", permanent=True)
        wanted = (lang or self.lang).strip()
        default = self._find(self.settings.voice)  # a missing default voice is reported as such
        best, score = default, language_match(default.language, wanted)
        if score < 2:
            for files in self.voices()[1:]:
                s = language_match(files.language, wanted)
                if s > score:
                    best, score = files, s
        if score == 0:
            raise TtsError(f"Piper has no voice for language {lang or wanted!r} "
                           f"(voices: {', '.join(f.name + ' ' + f.language for f in self.voices())})", permanent=True)
        return best

    def voice_id(self, lang: str = "", voice: str = "") -> str:
        """The voice's name, plus the synthesis scales when not the defaults (they change the audio)."""
        return self._choose(lang, voice).name + self._scales

    def load(self, lang: str = "", voice: str = "") -> VoiceFiles:
        """Load the voice ``lang``/``voice`` pick (the default one without arguments) now."""
        files = self._choose(lang, voice)
        self._loaded(files)
        return files

    def _loaded(self, files: VoiceFiles) -> _Loaded:
        key = str(files.model)
        with self._lock:
            got = self._voices.get(key)
            if got is not None:
                return got
            got = self._voices[key] = _open(files, self.settings)
            return got

    # -- synthesis ------------------------------------------------------------------------

    def synthesize(self, text: str, lang: str = "", voice: str = "") -> Synthesis:
        """Speak ``text`` with the chosen voice; audio, and phoneme timings when the voice gives them."""
        text = check_text(text)
        files = self._choose(lang, voice)
        loaded = self._loaded(files)
        # Control characters are not speech; ``[[...]]`` would be read as raw phonemes.
        text = "".join(" " if unicodedata.category(ch)[0] == "C" else ch for ch in text)
        text = speakable(text.replace("[", "(").replace("]", ")"))
        pcm: list[np.ndarray] = []
        phonemes: list[Phoneme] | None = [] if loaded.timed else None
        offset = 0
        timer = self._arm_deadline(loaded)
        try:
            for chunk in loaded.voice.synthesize(text, syn_config=self._config, include_alignments=loaded.timed):
                audio = chunk.audio_int16_array
                if phonemes is not None:
                    if chunk.phoneme_alignments:
                        phonemes += timed_phonemes([(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments],
                                                   files.sample_rate, offset)
                    else:  # one piece without timings: better none than timings for half the audio
                        log.debug("piper gave no alignment for %r", text[:40])
                        phonemes = None
                pcm.append(audio)
                offset += len(audio)
        except Exception as exc:  # noqa: BLE001 - onnxruntime and the phonemizer raise many types
            if timer is not None and timer.finished.is_set():
                raise TtsError(f"Piper gave up after {self.deadline_s:.2f} s (a busy CPU?)") from None
            raise TtsError(f"Piper voice {files.name} failed: {type(exc).__name__}: {str(exc)[:160]}") from exc
        finally:
            if timer is not None:
                timer.cancel()
                loaded.voice.session.local.options = None
        out = np.concatenate(pcm) if pcm else np.zeros(0, np.int16)
        if out.size == 0 or not np.any(out):
            raise TtsError(f"Piper produced no audio for {text[:40]!r} with voice {files.name}")
        out, phonemes = trim_silence(out, phonemes, files.sample_rate)
        return Synthesis(pcm=out.astype(np.int16, copy=False), sample_rate=files.sample_rate, engine=self.name,
                         voice=files.name + self._scales, phonemes=phonemes or [],
                         alphabet="ipa" if phonemes else "")

    def _arm_deadline(self, loaded: _Loaded) -> threading.Timer | None:
        """This thread's onnxruntime runs stop at ``deadline_s`` from now (``None``: no deadline)."""
        if self.deadline_s <= 0:
            return None
        import onnxruntime

        options = onnxruntime.RunOptions()
        loaded.voice.session.local.options = options
        timer = threading.Timer(self.deadline_s, setattr, (options, "terminate", True))
        timer.daemon = True
        timer.start()
        return timer


def _open(files: VoiceFiles, settings: VoicePiperSettings) -> _Loaded:
    """Load a voice into onnxruntime, patched to give alignments when ``onnx`` is installed."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    model = str(files.model)
    timed = False
    if settings.alignments:
        try:
            import onnx
            from piper.patch_voice_with_alignment import add_alignment_output
        except ImportError:
            log.warning("the onnx package is missing: Piper speaks without phoneme timings "
                        "(pip install onnx); the face follows the audio instead")
        else:
            try:
                proto = onnx.load(str(files.model))
                add_alignment_output(proto)
                model, timed = _write_temporary(proto), True
                del proto
            except OSError as exc:  # no room for the patched copy: speak anyway, without timings
                log.warning("Piper voice %s: no phoneme timings, the patched model cannot be written (%s)",
                            files.name, exc)
            except ValueError as exc:  # already patched on disk, or no duration tensor to expose
                timed = "already" in str(exc)
                log.info("Piper voice %s: not patched for alignments (%s)", files.name, exc)
            except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError and friends on a damaged file
                raise VoiceFileError(f"Piper voice model {files.model} cannot be read ({type(exc).__name__}): "
                                     "the file is damaged or not a Piper voice; reinstall the voice package "
                                     "or replace the .onnx") from None
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = settings.threads
    opts.inter_op_num_threads = 1
    # No busy-waiting between operators: the kiosk's other processes need those cycles, and on a
    # shared 2-core box spinning threads made Piper itself ~1.7x slower (0.34 vs 0.19 real-time factor).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(files.config.read_text(encoding="utf-8")))
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise VoiceFileError(f"Piper voice model {files.model} cannot be loaded ({type(exc).__name__}: "
                             f"{str(exc)[:120]}): the file is damaged or not a Piper voice; reinstall the voice "
                             "package or replace the .onnx") from None
    finally:
        if timed and model != str(files.model):
            Path(model).unlink(missing_ok=True)
    log.info("Piper voice %s (%s, %d Hz) from %s%s", files.name, files.language, files.sample_rate, files.model,
             "" if timed else ", without phoneme timings")
    return _Loaded(files, PiperVoice(session=_CancellableSession(session), config=config), timed)


def _write_temporary(proto) -> str:
    """The patched model in a temporary file, loaded from there: onnxruntime then holds one copy of
    the weights instead of three (bytes, proto and its own; ~90 MB less resident)."""
    with tempfile.NamedTemporaryFile(prefix="piper-", suffix=".onnx", delete=False) as tmp:
        try:
            tmp.write(proto.SerializeToString())
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    return tmp.name


def trim_silence(pcm: np.ndarray, phonemes: list[Phoneme] | None, rate: int,
                 keep_s: float = 0.010) -> tuple[np.ndarray, list[Phoneme] | None]:
    """Cut Piper's silent lead-in and tail (~40-80 ms each) down to ``keep_s``, timings moved along.

    The lead-in is dead air before the first sound of every reply; the scheduler puts its own
    pause between sentences (``voice.sentence_gap_ms``).
    """
    level = np.abs(pcm.astype(np.int32))
    loud = np.flatnonzero(level > max(64, int(level.max()) // 100))  # 40 dB under the peak
    if loud.size == 0:
        return pcm, phonemes
    keep = int(keep_s * rate)
    a, b = max(0, int(loud[0]) - keep), min(len(pcm), int(loud[-1]) + 1 + keep)
    if (a, b) == (0, len(pcm)):
        return pcm, phonemes
    if phonemes is not None:
        t0, t1 = a / rate, b / rate
        moved = []
        for p in phonemes:
            start, end = max(p.start_s, t0), min(p.start_s + p.dur_s, t1)
            if end > start:
                moved.append(Phoneme(p.label, start - t0, end - start))
        phonemes = moved
    return pcm[a:b], phonemes


def timed_phonemes(aligned: Sequence[tuple[str, int]], rate: int, offset: int = 0) -> list[Phoneme]:
    """Piper's (code point, samples) alignments -> phonemes with start and duration in seconds.

    ``offset`` (samples) places a later sentence of the same text after the ones before it.
    """
    segs: list[list] = []  # [label, start sample, samples]
    pos, stress = offset, 0
    for sym, n in aligned:
        n = max(0, int(n))
        if sym in _STRESS:
            stress += n  # the stressed vowel starts here
        elif sym in _PAUSES:
            if segs and segs[-1][0] == "_":
                segs[-1][2] += n + stress
            else:
                segs.append(["_", pos - stress, n + stress])
            stress = 0
        elif sym == " ":
            if segs:
                segs[-1][2] += n
            else:
                segs.append(["_", pos, n])
        elif (sym in _SUFFIX or unicodedata.combining(sym)) and segs and segs[-1][0] != "_":
            segs[-1][0] += sym
            segs[-1][2] += n
        else:
            segs.append([sym, pos - stress, n + stress])
            stress = 0
        pos += n
    if stress and segs:
        segs[-1][2] += stress
    return [Phoneme(label, start / rate, dur / rate) for label, start, dur in segs]
