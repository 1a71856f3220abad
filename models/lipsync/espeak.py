"""espeak-ng through ctypes: audio plus per-phoneme timings from its phoneme events.

Uses the library bundled by ``espeakng-loader`` (no apt package needed). One synthesiser per
process: libespeak-ng keeps global state.
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path

import numpy as np

from assistant.messages import Phoneme

log = logging.getLogger(__name__)

_SYNCHRONOUS = 2
_PHONEME_EVENTS = 0x0001
_EV_PHONEME, _EV_END, _EV_MSG_TERMINATED = 7, 5, 6
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
        ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p), ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class Espeak:
    """``say(text, voice, rate, pitch)`` -> (float32 pcm, sample_rate, phonemes in espeak mnemonics)."""

    def __init__(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = Path(espeakng_loader.get_data_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self._lib.espeak_Initialize(_SYNCHRONOUS, 0, str(data.parent).encode(), _PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise RuntimeError("espeak-ng failed to initialise")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._cb = _CALLBACK(self._on_audio)
        self._lib.espeak_SetSynthCallback(self._cb)

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            ev = events[i]
            if ev.type == _EV_PHONEME and not ev.id.startswith(b"("):  # "(en)": language switch
                self._events.append((ev.id.decode("utf-8", "replace"), ev.sample))
            i += 1
        return 0

    def say(self, text: str, voice: str = "en", rate: int = 175, pitch: int = 50, pitch_range: int = 50):
        if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 100)):
            self._lib.espeak_SetParameter(param, int(value), 0)
        self._chunks, self._events = [], []
        raw = text.encode("utf-8") + b"\0"
        self._lib.espeak_Synth(raw, len(raw), 0, 1, 0, 1, None, None)
        self._lib.espeak_Synchronize()
        pcm = (np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)).astype(np.float32) / 32768
        starts = [s / self.sample_rate for _, s in self._events] + [len(pcm) / self.sample_rate]
        phonemes = [
            Phoneme(lab, starts[i], max(starts[i + 1] - starts[i], 0.0))
            for i, (lab, _) in enumerate(self._events)
        ]
        return pcm, self.sample_rate, phonemes
