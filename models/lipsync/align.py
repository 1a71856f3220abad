"""Forced alignment with pocketsphinx: known transcript + speech -> ARPAbet phoneme timings."""

from __future__ import annotations

import logging

import numpy as np

from assistant.messages import Phoneme

log = logging.getLogger(__name__)


def align_phonemes(audio16k: np.ndarray, transcript: str) -> list[Phoneme]:
    """Per-phone times (seconds) for ``transcript`` spoken in 16 kHz mono ``audio16k``."""
    from pocketsphinx import Decoder

    pcm = (np.clip(audio16k, -1, 1) * 32767).astype("<i2").tobytes()
    dec = Decoder(samprate=16000, loglevel="FATAL")
    dec.set_align_text(transcript.lower())
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    dec.set_alignment()
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()
    frame_s = 1.0 / dec.config["frate"]
    out = []
    for word in dec.get_alignment():
        for phone in word:
            out.append(Phoneme(phone.name, phone.start * frame_s, phone.duration * frame_s))
    if not out:
        raise RuntimeError(f"pocketsphinx could not align {transcript!r}")
    return out
