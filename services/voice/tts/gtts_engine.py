"""Google Translate's TTS through gTTS: natural voices, needs the network.

gTTS returns MP3; it is decoded to PCM with soundfile (libsndfile >= 1.1 reads MP3). The network
timeout is passed to gTTS (and so to ``requests``); the failover chain puts its own deadline on
top, because DNS lookups are not covered by the ``requests`` timeout.
"""

from __future__ import annotations

import io
import logging

import numpy as np

from assistant.config.schema import VoiceGttsSettings

from .base import EngineUnavailable, Synthesis, TtsError, check_text

log = logging.getLogger(__name__)


class GttsEngine:
    """gTTS engine. Thread-safe: every call makes its own ``gTTS`` object and HTTP session."""

    name = "gtts"

    def __init__(self, settings: VoiceGttsSettings = VoiceGttsSettings(), lang: str = "en") -> None:
        """``settings``: ``voice.gtts``; ``lang``: used when a request names none (``voice.lang``; gTTS
        codes: ``en``, ``cs``, ``zh-CN``)."""
        try:
            import gtts  # noqa: F401 - import check only
            import soundfile  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("gTTS needs the voice extra: pip install 'embodied-assistant[voice]'") from exc
        self.settings = settings
        self.lang = lang

    def _lang(self, lang: str) -> str:
        from gtts.lang import tts_langs

        code = (lang or self.lang).strip()
        langs = tts_langs()  # a table inside gTTS: no network
        for cand in (code, code.lower(), code.split("-")[0].lower()):
            if cand in langs:
                return cand
        raise TtsError(f"gTTS does not speak language {lang!r}", permanent=True)

    def voice_id(self, lang: str = "", voice: str = "") -> str:
        """``<lang>-<tld>``; gTTS has no named voices, so ``voice`` (meant for other engines) is ignored."""
        return f"{self._lang(lang)}-{self.settings.tld}"

    def synthesize(self, text: str, lang: str = "", voice: str = "") -> Synthesis:
        """Fetch MP3 from Google and decode it; ``EngineUnavailable`` when the host cannot be reached."""
        from gtts import gTTS, gTTSError
        import soundfile as sf

        text = check_text(text)
        code = self._lang(lang)
        parts: list[bytes] = []
        try:
            tts = gTTS(text, tld=self.settings.tld, lang=code, slow=self.settings.slow, lang_check=False,
                       timeout=self.settings.timeout_s)
            # gTTS sends text in pieces of <= 100 characters; each answer is a complete MP3 file.
            # Decoding them one by one matters: libsndfile stops at the end of the first file
            # when given the concatenation.
            parts = [chunk for chunk in tts.stream() if chunk]
        except gTTSError as exc:
            if getattr(exc, "rsp", None) is None:
                raise EngineUnavailable(f"gTTS: {exc}") from exc
            raise TtsError(f"gTTS: {exc}") from exc
        except AssertionError as exc:  # gTTS asserts when nothing is left after its own cleaning
            raise TtsError(f"gTTS: nothing to say in {text[:40]!r}", permanent=True) from exc
        if not parts:
            raise TtsError("gTTS returned no audio")
        pieces, rate = [], 0
        for mp3 in parts:
            try:
                audio, part_rate = sf.read(io.BytesIO(mp3), dtype="int16", always_2d=True)
            except Exception as exc:  # noqa: BLE001 - libsndfile raises several types on bad data
                raise TtsError(f"gTTS returned audio that does not decode as MP3: {exc}") from exc
            if rate and part_rate != rate:
                raise TtsError(f"gTTS returned parts at {rate} and {part_rate} Hz")
            rate = part_rate
            pieces.append(audio.mean(axis=1).astype(np.int16) if audio.shape[1] > 1 else audio[:, 0])
        pcm = np.concatenate(pieces)
        if pcm.size == 0:
            raise TtsError("gTTS returned empty audio")
        mp3_bytes = sum(len(p) for p in parts)
        log.debug("gtts: %d bytes of MP3 in %d parts -> %.2f s at %d Hz", mp3_bytes, len(parts), pcm.size / rate, rate)
        return Synthesis(pcm=pcm, sample_rate=int(rate), engine=self.name, voice=f"{code}-{self.settings.tld}")
