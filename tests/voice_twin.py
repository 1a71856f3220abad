"""A stand-in for the voice service on the bus: announces utterances and reports the playback clock.

It behaves as the voice contract says (``voice.utterance`` with PCM ahead of ``play_at``,
``voice.playback`` while playing, ``voice.done`` at the end, ``voice.stop`` for barge-in), with
a speaker that plays in real time: sample ``i`` leaves at ``play_at_ns + i / sample_rate``.
Used by the renderer's service tests and by ``bench/renderer.py`` when no voice service runs.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from assistant import espeak
from assistant.messages import Done, Phoneme, Playback, Stop, Utterance


def espeak_speech(folder: Path, text: str) -> tuple[np.ndarray, int] | None:
    """``text`` spoken by the espeak-ng command (int16 mono, its rate); None when it is not installed."""
    import soundfile as sf

    if espeak.program() is None:
        return None
    path = folder / "espeak.wav"
    espeak.write_wav(text, path, timeout=30).check_returncode()
    pcm, sr = sf.read(path, dtype="int16")
    return (pcm if pcm.ndim == 1 else pcm[:, 0]), sr


def librivox_speech(shared_data: Path, index: int = 0) -> tuple[np.ndarray, int, list[Phoneme]]:
    """A LibriVox clip (int16 mono, rate) with its ARPAbet phone alignment."""
    import soundfile as sf

    wav = sorted((shared_data / "speech" / "librivox").glob("*.wav"))[index]
    pcm, sr = sf.read(wav, dtype="int16")
    align = json.loads(wav.with_suffix(".phone.json").read_text())
    phones = []

    def walk(node):
        if isinstance(node, dict):
            if "t" in node and "b" in node and "d" in node and not node.get("w"):
                phones.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(align)
    phonemes = [Phoneme(p["t"], float(p["b"]), float(p["d"])) for p in sorted(phones, key=lambda p: p["b"])]
    return (pcm if pcm.ndim == 1 else pcm[:, 0]), sr, phonemes


class VoiceTwin:
    """Plays utterances on the bus clock through ``client`` (a ``BusClient``)."""

    def __init__(self, client, report_every_s: float = 0.04):
        self.client = client
        self.report_every_s = report_every_s
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.stopped_ns = 0

    def play(self, uid: str, pcm: np.ndarray, sample_rate: int, ahead_s: float = 0.3, phonemes=(),
             alphabet: str = "", text: str = "") -> int:
        """Announce now, play from ``now + ahead_s`` on a thread; returns ``play_at_ns``."""
        play_at = time.monotonic_ns() + int(ahead_s * 1e9)
        self.client.publish(Utterance(utterance_id=uid, text=text or uid, sample_rate=sample_rate, play_at_ns=play_at,
                                      engine="espeak-ng", pcm=np.asarray(pcm, "<i2").tobytes(),
                                      phonemes=list(phonemes), phoneme_alphabet=alphabet))
        self._stop.clear()
        self.thread = threading.Thread(target=self._clock, args=(uid, len(pcm), sample_rate, play_at), daemon=True)
        self.thread.start()
        return play_at

    def _clock(self, uid: str, n: int, sr: int, play_at: int) -> None:
        while not self._stop.is_set():
            now = time.monotonic_ns()
            pos = int((now - play_at) / 1e9 * sr)
            if pos >= n:
                break
            if pos >= 0:
                self.client.publish(Playback(utterance_id=uid, position_samples=pos, at_ns=now, sample_rate=sr))
            self._stop.wait(self.report_every_s)
        self.client.publish(Done(utterance_id=uid, status="interrupted" if self._stop.is_set() else "finished"))

    def barge_in(self) -> int:
        """``voice.stop`` as the brain sends it on barge-in; returns when it was sent."""
        self._stop.set()
        self.stopped_ns = time.monotonic_ns()
        self.client.publish(Stop(reason="barge-in"))
        return self.stopped_ns

    def wait(self, timeout: float = 30.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout)
