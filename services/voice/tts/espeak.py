"""espeak-ng through libespeak-ng (ctypes): offline speech with per-phoneme timings.

The phoneme events come from the synthesiser itself (``espeakINITIALIZE_PHONEME_EVENTS``), so the
timings match the audio sample for sample, for every language espeak-ng speaks. MBROLA voices
(``mb-us2``...) are used when Debian's ``mbrola`` and voice packages are installed.
"""

from __future__ import annotations

import ctypes
import logging
import shutil
from pathlib import Path

import numpy as np

from assistant.messages.voice import Phoneme

from assistant.config.schema import VoiceEspeakSettings

from . import _espeak_lib as L
from .base import Synthesis, TtsError, check_text

log = logging.getLogger(__name__)

MBROLA_DIRS = ("/usr/share/mbrola", "/usr/lib/mbrola")


class EspeakEngine:
    """espeak-ng via ctypes. Thread-safe: one process-wide lock serialises the C library."""

    name = "espeak-ng"

    def __init__(self, settings: VoiceEspeakSettings = VoiceEspeakSettings(), lang: str = "en") -> None:
        """``settings``: ``voice.espeak``; ``lang``: used when a request names none (``voice.lang``).
        One library per process: an empty ``library_path`` loads the copy bundled with
        ``espeakng-loader``, or Debian's (which has MBROLA support) for an ``mb-*`` voice."""
        self.settings = settings
        self.lang = lang
        lib_path, data_path = settings.library_path or None, settings.data_path or None
        if lib_path is None and self.settings.voice.startswith("mb-"):
            system = L.system_library()
            if system is None:
                log.warning("MBROLA voice %s asked for but Debian's libespeak-ng is not installed",
                            self.settings.voice)
            else:
                lib_path, data_path = system
        self._lib = L.load(lib_path, data_path)
        self._current_voice: str | None = None

    # -- voices ---------------------------------------------------------------------------

    def mbrola_voices(self) -> list[str]:
        """MBROLA voices that are fully installed (voice file, database and the ``mbrola`` program)."""
        mb_dir = Path(self._lib.data_path) / "voices" / "mb"
        if not mb_dir.is_dir() or shutil.which("mbrola") is None:
            return []
        return sorted(p.name for p in mb_dir.iterdir() if self._mbrola_database(p) is not None)

    @staticmethod
    def _mbrola_database(voice_file: Path) -> Path | None:
        try:
            lines = voice_file.read_text(errors="replace").splitlines()
        except OSError:
            return None
        for line in lines:
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "mbrola":
                db = parts[1]
                for base in MBROLA_DIRS:
                    for cand in (Path(base) / db / db, Path(base) / db):
                        if cand.is_file():
                            return cand
        return None

    def voice_id(self, lang: str = "", voice: str = "") -> str:
        """The espeak voice name for ``lang``/``voice``; ``TtsError(permanent=True)`` when unsupported."""
        voice = voice or self.settings.voice
        if voice:
            if voice.startswith("mb-"):
                if voice not in self.mbrola_voices():
                    raise TtsError(f"MBROLA voice {voice!r} is not installed "
                                   f"(apt-get install mbrola mbrola-{voice[3:].split('-')[0]})", permanent=True)
                return voice
            base = voice.split("+")[0].lower()
            if base not in self._lib.languages and not any(k.endswith("/" + base) for k in self._lib.voices):
                raise TtsError(f"espeak-ng has no voice {voice!r}", permanent=True)
            return voice
        code = (lang or self.lang).strip().lower().replace("_", "-")
        if code in self._lib.languages:
            return code
        if code.split("-")[0] in self._lib.languages:
            return code.split("-")[0]
        raise TtsError(f"espeak-ng does not speak language {lang!r}", permanent=True)

    # -- synthesis ------------------------------------------------------------------------

    def synthesize(self, text: str, lang: str = "", voice: str = "") -> Synthesis:
        """Speak ``text`` and return its audio and phoneme timings."""
        text = check_text(text)
        vid = self.voice_id(lang, voice)
        chunks: list[bytes] = []
        marks: list[tuple[str, int]] = []
        total = [0]

        def on_audio(wav, numsamples, events) -> int:
            if wav and numsamples > 0:
                chunks.append(ctypes.string_at(wav, numsamples * 2))
                total[0] += numsamples
            i = 0
            while events[i].type != L.EVENT_LIST_TERMINATED:
                ev = events[i]
                if ev.type == L.EVENT_PHONEME:
                    marks.append((ev.id.string.decode("utf-8", errors="replace"), ev.sample))
                i += 1
            return 0

        callback = L.SYNTH_CALLBACK(on_audio)  # kept alive until Synth returns
        # A NUL would end the C string early (the rest silently unspoken); other control
        # characters are not speech either. Lone surrogates cannot be encoded: replace them.
        text = "".join(" " if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in text)
        data = text.encode("utf-8", errors="replace") + b"\0"
        with L.ESPEAK_LOCK:
            lib = self._lib.lib
            if vid != self._current_voice:
                err = lib.espeak_SetVoiceByName(vid.encode())
                if err != L.EE_OK:
                    self._current_voice = None
                    raise TtsError(f"espeak-ng could not load voice {vid!r} (error {err})", permanent=True)
                self._current_voice = vid
            lib.espeak_SetParameter(L.PARAM_RATE, self.settings.rate_wpm, 0)
            lib.espeak_SetParameter(L.PARAM_PITCH, self.settings.pitch, 0)
            rate = lib.espeak_ng_GetSampleRate()  # 16 kHz for MBROLA voices, 22.05 kHz otherwise
            lib.espeak_SetSynthCallback(callback)
            err = lib.espeak_Synth(data, len(data), 0, L.POS_CHARACTER, 0, L.CHARS_UTF8, None, None)
            if err != L.EE_OK:
                raise TtsError(f"espeak-ng synthesis failed (error {err})")
        pcm = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.int16)
        if pcm.size == 0 or not np.any(pcm):
            raise TtsError(f"espeak-ng produced no audio for {text[:40]!r} with voice {vid!r}")
        return Synthesis(pcm=pcm, sample_rate=rate, engine=self.name, voice=vid,
                         phonemes=_phonemes(marks, pcm.size, rate), alphabet="espeak")


def _phonemes(marks: list[tuple[str, int]], n_samples: int, rate: int) -> list[Phoneme]:
    """Phoneme events (label, start sample) -> phonemes with durations, each ending where the next starts."""
    out: list[Phoneme] = []
    for i, (label, start) in enumerate(marks):
        end = marks[i + 1][1] if i + 1 < len(marks) else n_samples
        start = min(max(start, 0), n_samples)
        end = min(max(end, start), n_samples)
        out.append(Phoneme(label, start / rate, (end - start) / rate))
    return out
