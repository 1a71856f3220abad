"""The scripted visitor's voice: lines synthesised with espeak-ng and spoken into the simulated room.

The hearing service's microphone twin hears any file that appears in its cue folder
(``hearing.mic_sim_cue_dir``) from the time in its name; this class writes those files. espeak-ng's
MBROLA voice ``mb-us2`` is used because pocketsphinx recognises it well (the default espeak voice
it does not), so the demo exercises real speech recognition on real synthesised speech.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant import espeak

log = logging.getLogger(__name__)

RATE = 16_000


class VoiceUnavailable(RuntimeError):
    """espeak-ng or the MBROLA voice is missing; the message says what to install."""


@dataclass(frozen=True)
class Spoken:
    """A line the visitor said: when its sound starts and ends (monotonic ns)."""

    text: str
    start_ns: int
    end_ns: int
    pcm: np.ndarray
    """int16 mono at 16 kHz, as the microphone hears it (leading and trailing silence trimmed)."""


def synthesise(text: str, path: Path, voice: str = "mb-us2") -> np.ndarray:
    """``text`` spoken by espeak-ng into ``path``; int16 mono 16 kHz with the silence around it trimmed."""
    from hardware.microphone import load_audio

    try:
        out = espeak.write_wav(text, path, voice)
    except FileNotFoundError as exc:
        raise VoiceUnavailable(str(exc)) from None
    if out.returncode != 0 or not path.exists() or path.stat().st_size < 1000:
        raise VoiceUnavailable(f"espeak-ng voice {voice} unusable ({out.stderr.strip()[:200]}); "
                               f"apt-get install mbrola mbrola-{voice.removeprefix('mb-')} (Debian contrib/non-free)")
    pcm = load_audio(path)
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 300)
    if len(loud) == 0:
        raise VoiceUnavailable(f"espeak-ng voice {voice} produced silence for {text!r}")
    return pcm[max(0, loud[0] - 800):loud[-1] + 800]


class ScriptedVisitor:
    """Speaks prepared lines into the simulated room through the microphone twin's cue folder."""

    def __init__(self, cue_dir: str | Path, work_dir: str | Path, voice: str = "mb-us2") -> None:
        self.cue_dir = Path(cue_dir)
        self.work_dir = Path(work_dir)
        self.voice = voice
        self.cue_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._lines: dict[str, np.ndarray] = {}
        self.spoken: list[Spoken] = []

    def prepare(self, lines: list[str]) -> None:
        """Synthesise every line up front, so saying one later costs nothing."""
        for i, text in enumerate(lines):
            if text not in self._lines:
                self._lines[text] = synthesise(text, self.work_dir / f"line{i:02d}.wav", self.voice)

    def duration_s(self, text: str) -> float:
        return len(self._lines[text]) / RATE

    def say(self, text: str, lead_s: float = 0.15) -> Spoken:
        """Start saying ``text`` ``lead_s`` from now (time for the microphone to pick the cue up)."""
        import soundfile as sf

        if text not in self._lines:
            self.prepare([text])
        pcm = self._lines[text]
        start = time.monotonic_ns() + int(lead_s * 1e9)
        name = f"{start}_{len(self.spoken):02d}.wav"
        tmp = self.work_dir / f".{name}"
        sf.write(str(tmp), pcm, RATE, subtype="PCM_16")
        os.replace(tmp, self.cue_dir / name)  # atomic: the microphone never sees half a file
        line = Spoken(text, start, start + len(pcm) * 1_000_000_000 // RATE, pcm)
        self.spoken.append(line)
        log.info("visitor says %r (%.1f s)", text, len(pcm) / RATE)
        return line
