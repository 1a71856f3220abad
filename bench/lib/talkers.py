"""Two or three people side by side in the simulated camera, taking turns to talk with their own voices.

Each person is a real talking clip (GRID or ``talking/wild``, read from ``../shared/data`` at run
time, never stored): while it is their turn the clip plays from an offset and its own audio is
mixed into the microphone at the same moment; between turns the face holds a still frame. A turn
may overlap the previous one, a listener may move the mouth in silence (``mime``: chewing,
smiling, miming) and a person may stand turned slightly away (``yaw``). ``ground truth``: who is
voiced in every 10 ms of the mix, from each clip's own audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hardware.camera_sim import PersonSprite, Walk, clip_path

RATE = 16_000
HOP_S = 0.01


def clip_audio(path: Path) -> np.ndarray:
    """The clip's own sound as float32 mono at 16 kHz (PyAV decodes MPEG-1/MP2 and MP4/AAC)."""
    import av
    import soxr

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise ValueError(f"{path} has no audio track")
        stream = c.streams.audio[0]
        rate = stream.rate
        chunks = [f.to_ndarray().astype(np.float32) for f in c.decode(stream)]
    pcm = np.concatenate([ch.reshape(-1, ch.shape[-1]) if ch.ndim > 1 else ch[None] for ch in chunks], axis=1)
    if pcm.shape[0] > 1 and pcm.shape[0] <= 8:
        pcm = pcm.mean(axis=0)
    else:
        pcm = pcm.ravel()
    if np.abs(pcm).max() > 2.0:  # integer samples
        pcm = pcm / 32768.0
    return soxr.resample(pcm, rate, RATE).astype(np.float32)


def voiced_hops(pcm: np.ndarray, below_peak_db: float = 20.0) -> np.ndarray:
    """Per 10 ms: is the clip's own speaker voiced (level within ``below_peak_db`` of its loud frames)."""
    n = len(pcm) // int(RATE * HOP_S)
    hops = pcm[: n * int(RATE * HOP_S)].reshape(n, -1)
    db = 10 * np.log10(np.mean(hops.astype(np.float64) ** 2, axis=1) + 1e-10)
    loud = np.percentile(db, 95)
    v = db > loud - below_peak_db
    # close 100 ms holes (stops inside words), drop blips under 50 ms
    out = v.copy()
    for i in range(len(v)):
        if not v[i]:
            lo, hi = max(0, i - 10), min(len(v), i + 10)
            out[i] = v[lo:i].any() and v[i:hi].any()
    return out


@dataclass
class Talker:
    clip: str
    sprite: PersonSprite
    audio: np.ndarray
    voiced: np.ndarray
    x_m: float
    distance_m: float
    yaw: float = 1.0
    walk: Walk | None = None

    @property
    def speech_span_s(self) -> tuple[float, float]:
        idx = np.flatnonzero(self.voiced)
        return (idx[0] * HOP_S, (idx[-1] + 1) * HOP_S) if len(idx) else (0.0, len(self.audio) / RATE)


@dataclass
class Turn:
    person: int
    start_s: float
    offset_s: float
    dur_s: float
    mime: bool = False
    """Mouth motion without sound (the clip plays, its audio is not mixed in)."""


@dataclass
class StagedTalk:
    talkers: list[Talker]
    turns: list[Turn]
    duration_s: float
    mic: np.ndarray
    """int16 16 kHz: what the microphone hears (every voiced turn mixed, room noise)."""
    truth: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    """[hop, person]: voiced per 10 ms."""

    def speaking(self, t_s: float) -> list[int]:
        i = int(t_s / HOP_S)
        if i < 0 or i >= len(self.truth):
            return []
        return [int(p) for p in np.flatnonzero(self.truth[i])]


def load_talker(clip: str, x_m: float, distance_m: float, yaw: float = 1.0) -> Talker:
    path = clip_path(clip)
    audio = clip_audio(path)
    sprite = PersonSprite.from_clip(path, None, max_face_px=140)
    return Talker(clip, sprite, audio, voiced_hops(audio), x_m, distance_m, yaw)


def stage(talkers: list[Talker], n_turns: int = 22, *, seed: int = 0, overlap_every: int = 5, mime_every: int = 4,
          noise_db: float = -55.0) -> StagedTalk:
    """Alternating turns (with a random repeat now and then when three people talk), every
    ``overlap_every``-th turn starting 0.5 s before the previous ends, every ``mime_every``-th gap
    filled by a listener's silent mouth motion."""
    rng = np.random.default_rng(seed)
    turns: list[Turn] = []
    t = 1.0
    person = 0
    for k in range(n_turns):
        tk = talkers[person]
        lo, hi = tk.speech_span_s
        seg = min(hi - lo, float(rng.uniform(1.6, 3.0)))
        off = float(rng.uniform(lo, max(lo, hi - seg)))
        start = t
        if k and k % overlap_every == 0:
            start = max(turns[-1].start_s + 0.6, t - 0.5)  # talks over the end of the previous turn
        turns.append(Turn(person, start, off, seg))
        t = start + seg
        gap = float(rng.uniform(0.4, 1.0))
        nxt = (person + 1) % len(talkers) if len(talkers) == 2 or rng.random() < 0.8 else person
        if k % mime_every == mime_every - 1:
            # a listener chews or smiles: mouth motion during the pause, no sound
            other = [p for p in range(len(talkers)) if p != nxt][0]
            lo2, hi2 = talkers[other].speech_span_s
            turns.append(Turn(other, t + 0.1, float(rng.uniform(lo2, max(lo2, hi2 - 1.2))), 1.2, mime=True))
            gap += 1.3
        t += gap
        person = nxt
    duration = t + 1.0
    n = int(duration * RATE)
    mic = np.zeros(n, np.float32)
    truth = np.zeros((int(duration / HOP_S) + 1, len(talkers)), bool)
    for tr in turns:
        tk = talkers[tr.person]
        a0, a1 = int(tr.offset_s * RATE), int((tr.offset_s + tr.dur_s) * RATE)
        sound = tk.audio[a0:a1]
        mask = tk.voiced.repeat(int(RATE * HOP_S))
        rms = float(np.sqrt(np.mean(tk.audio[: len(mask)][mask] ** 2)) + 1e-9)
        if not tr.mime:
            s0 = int(tr.start_s * RATE)
            mic[s0:s0 + len(sound)] += sound * (0.1 / rms)
            h0, h1 = int(tr.offset_s / HOP_S), int((tr.offset_s + tr.dur_s) / HOP_S)
            v = tk.voiced[h0:h1]
            s_h = int(tr.start_s / HOP_S)
            truth[s_h:s_h + len(v), tr.person] |= v
    mic += np.random.default_rng(seed + 1).standard_normal(n).astype(np.float32) * 10 ** (noise_db / 20)
    pcm = np.clip(mic * 32767, -32768, 32767).astype(np.int16)
    for i, tk in enumerate(talkers):
        tk.walk = Walk(tk.sprite, [(0.0, tk.x_m, tk.distance_m), (duration + 5, tk.x_m, tk.distance_m)],
                       talk=[(tr.start_s, tr.offset_s, tr.dur_s) for tr in turns if tr.person == i and not tr.mime],
                       mime=[(tr.start_s, tr.offset_s, tr.dur_s) for tr in turns if tr.person == i and tr.mime],
                       rest_s=0.0, yaw=tk.yaw)
    return StagedTalk(talkers, turns, duration, pcm, truth)
