"""Audio features aligned to video frames, shared by lip-sync training and run time (numpy only).

Per 10 ms hop (at 25 fps: four hops per video frame) we take MFCC c1..c12, the log energy
and their first temporal derivatives, as in the seed paper (13 MFCCs + deltas + log energy).
The hops of one video frame are stacked, so the network sees one vector per video frame with
sub-frame timing inside it. The mel filterbank is built for the input's own sample rate
(capped at its Nyquist frequency), so no resampling is needed and any rate from 8 kHz up works.

Training (``models.lipsync``) and the run-time driver (``assistant.face.lstm_driver``) both call
``frame_features``: the same code on both sides, so the network never sees features computed
another way.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

_POWER_FLOOR = 1e-10  # -100 dB re full scale: digital silence maps here, not to -inf


@dataclass(frozen=True)
class FeatureConfig:
    """How the audio is cut and described; stored with every model so run time matches it."""

    fps: float = 25.0
    """Video frame rate the features are aligned to (GRID and our renderer run at 25)."""
    sub_frames: int = 4
    """Hops per video frame: 4 x 10 ms at 25 fps, fine enough to see plosive onsets."""
    win_s: float = 0.025
    """Analysis window; 25 ms is the usual speech compromise between time and pitch detail."""
    n_mels: int = 40
    """Mel bands before the DCT, as in the seed (40 triangular filters)."""
    n_mfcc: int = 13
    """Cepstra kept; c0 is replaced by the log energy (gain belongs in one feature only)."""
    fmin: float = 60.0
    fmax: float = 7600.0
    """Upper band edge: 16 kHz telephony-grade audio still fills every band."""
    delta_width: int = 2
    """Regression half-width of the deltas, in hops (+-20 ms)."""

    @property
    def per_hop(self) -> int:
        return 2 * self.n_mfcc

    @property
    def dim(self) -> int:
        """Feature length per video frame."""
        return self.per_hop * self.sub_frames

    def to_dict(self) -> dict:
        return asdict(self)


def to_float_mono(pcm: np.ndarray) -> np.ndarray:
    """int16 / float PCM, mono or (samples, channels), -> float32 mono in [-1, 1]."""
    x = np.asarray(pcm)
    if x.dtype == np.int16:  # scale before mixing channels: the mean is no longer integer
        x = x.astype(np.float32) / 32768.0
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] <= 8 else x.mean(axis=0)
    if x.ndim != 1:
        raise ValueError(f"expected mono or (samples, channels) PCM, got shape {x.shape}")
    return np.nan_to_num(x.astype(np.float32), nan=0.0, posinf=1.0, neginf=-1.0)


def n_video_frames(n_samples: int, sample_rate: int, fps: float) -> int:
    """Frames an utterance spans: ``ceil(duration * fps)`` (the driver contract)."""
    return int(np.ceil(n_samples / sample_rate * fps - 1e-9))


@functools.lru_cache(maxsize=16)
def _filterbank(cfg: FeatureConfig, sample_rate: int, n_fft: int) -> np.ndarray:
    """Cached: the same few rates recur for every utterance."""
    bank = _mel_filterbank(cfg, sample_rate, n_fft)
    bank.setflags(write=False)
    return bank


def _mel_filterbank(cfg: FeatureConfig, sample_rate: int, n_fft: int) -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    fmax = min(cfg.fmax, sample_rate / 2)
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.fmin), hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - freqs) / np.maximum(hi - mid, 1e-9)
    bank = np.clip(np.minimum(up, down), 0.0, None)
    bank[:, freqs > fmax] = 0.0  # bands above Nyquist stay empty (8 kHz input)
    return bank.astype(np.float32)


def _dct_matrix(n_out: int, n_in: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None, :]
    m = np.cos(np.pi / n_in * (n + 0.5) * k) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def _deltas(x: np.ndarray, width: int) -> np.ndarray:
    pad = np.pad(x, ((width, width), (0, 0)), mode="edge")
    num = sum(k * (pad[width + k : len(x) + width + k] - pad[width - k : len(x) + width - k]) for k in range(1, width + 1))
    return num / (2 * sum(k * k for k in range(1, width + 1)))


def hop_features(pcm: np.ndarray, sample_rate: int, cfg: FeatureConfig = FeatureConfig(), n_frames: int | None = None) -> np.ndarray:
    """(n_frames * sub_frames, 2 * n_mfcc) features: [log energy, c1..c12, their deltas].

    Hop ``i`` is centred at ``(i + 0.5 - sub_frames / 2) * hop``, so the hops of video frame ``k``
    are centred around ``k / fps``, the instant that frame is shown.
    """
    if sample_rate < 4000:
        raise ValueError(f"sample rate {sample_rate} Hz is too low for speech features")
    x = to_float_mono(pcm)
    if n_frames is None:
        n_frames = n_video_frames(len(x), sample_rate, cfg.fps)
    n_hops = n_frames * cfg.sub_frames
    if n_hops == 0:
        return np.zeros((0, cfg.per_hop), np.float32)
    hop = sample_rate / (cfg.fps * cfg.sub_frames)
    win = int(round(cfg.win_s * sample_rate))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    centres = np.round((np.arange(n_hops) + 0.5 - cfg.sub_frames / 2) * hop).astype(np.int64)
    starts = centres - win // 2
    pad_l = int(max(0, -starts.min()))
    pad_r = int(max(0, starts.max() + win - len(x)))
    xp = np.pad(x, (pad_l, pad_r))
    raw = xp[(starts + pad_l)[:, None] + np.arange(win)[None, :]]
    log_e = np.log(np.maximum(np.einsum("ij,ij->i", raw, raw) / win, _POWER_FLOOR))
    spec = np.fft.rfft(raw * np.hanning(win).astype(np.float32), n_fft, axis=1)
    power = (spec.real**2 + spec.imag**2) / win
    mel = np.log(np.maximum(power @ _filterbank(cfg, sample_rate, n_fft).T, _POWER_FLOOR))
    cep = mel @ _dct_matrix(cfg.n_mfcc, cfg.n_mels).T
    static = np.concatenate([log_e[:, None], cep[:, 1:]], axis=1).astype(np.float32)
    return np.concatenate([static, _deltas(static, cfg.delta_width)], axis=1).astype(np.float32)


def frame_features(pcm: np.ndarray, sample_rate: int, cfg: FeatureConfig = FeatureConfig(), n_frames: int | None = None) -> np.ndarray:
    """(n_frames, cfg.dim) features, one row per video frame, hops stacked in time order."""
    hops = hop_features(pcm, sample_rate, cfg, n_frames)
    return hops.reshape(-1, cfg.dim)
