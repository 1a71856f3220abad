"""espeak-ng through libespeak-ng (``assistant.espeak``, ctypes): offline speech with per-phoneme timings.

The phoneme events come from the synthesiser itself (``espeakINITIALIZE_PHONEME_EVENTS``), so the
timings match the audio sample for sample, for every language espeak-ng speaks. MBROLA voices
(``mb-us2``...) are used when Debian's ``mbrola`` and voice packages are installed.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from assistant import espeak as L

from assistant.config.schema import VoiceEspeakSettings

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
        try:
            speech = L.speak(self._lib, text, vid, rate_wpm=self.settings.rate_wpm, pitch=self.settings.pitch)
        except L.EspeakError as exc:
            raise TtsError(str(exc), permanent=exc.permanent) from None
        pcm, rate = speech.pcm, speech.sample_rate
        if pcm.size == 0 or not np.any(pcm):
            raise TtsError(f"espeak-ng produced no audio for {text[:40]!r} with voice {vid!r}")
        return Synthesis(pcm=pcm, sample_rate=rate, engine=self.name, voice=vid,
                         phonemes=speech.phonemes(), alphabet="espeak")

