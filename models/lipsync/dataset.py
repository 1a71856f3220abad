"""Dataset builder: talking video -> per-frame canonical mouth landmarks + the speech audio.

``python -m models.lipsync.dataset VIDEO... --out build/lipsync/real`` writes one ``.npz`` per
video (audio at 16 kHz, mouth (frames, 20, 2) in the canonical face frame, the clip's rest
mouth). Features are computed from the audio later by ``assistant.face.audio_features`` so
that augmentation can act on the waveform and training uses run-time feature code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from assistant.face.audio_features import FeatureConfig, frame_features, n_video_frames
from assistant.face.geometry import MOUTH, mouth_opening, to_canonical
from assistant.face.mouth_shapes import NEUTRAL_MOUTH

from .config import TargetConfig
from .video import VideoError, read_audio, track_face

log = logging.getLogger(__name__)
SAMPLE_RATE = 16000  # stored audio rate: speech band is below 8 kHz, files stay small


@dataclass
class Clip:
    """One utterance with its mouth track: real (from video) or synthetic (from phonemes)."""

    name: str
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    mouth: np.ndarray  # (frames, 20, 2) canonical, speaker's rest shape replaced by NEUTRAL_MOUTH
    fps: float = 25.0
    real: bool = True

    def save(self, path: Path) -> None:
        np.savez_compressed(path, name=self.name, audio=self.audio, mouth=self.mouth, fps=self.fps, real=self.real)

    @classmethod
    def load(cls, path: Path) -> "Clip":
        z = np.load(path)
        return cls(str(z["name"]), z["audio"], z["mouth"], float(z["fps"]), bool(z["real"]))


def rest_mouth(mouth: np.ndarray, quantile: float = 0.15) -> np.ndarray:
    """The speaker's closed mouth: mean of the frames whose inner-lip opening is smallest."""
    opening = mouth_opening(mouth)
    closed = opening <= np.quantile(opening, quantile)
    return mouth[closed].mean(axis=0)


def fill_gaps(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a face (edges hold the nearest value)."""
    t = np.arange(len(values))
    flat = values.reshape(len(values), -1).copy()
    for j in range(flat.shape[1]):
        flat[~found, j] = np.interp(t[~found], t[found], flat[found, j])
    return flat.reshape(values.shape)


def to_fps(mouths: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Resample a (frames, 20, 2) track to the model's frame rate (a 30 fps phone video -> 25)."""
    if abs(fps_in - fps_out) < 1e-3:
        return mouths
    t_in = np.arange(len(mouths)) / fps_in
    t_out = np.arange(int(np.floor(t_in[-1] * fps_out)) + 1) / fps_out
    flat = mouths.reshape(len(mouths), -1)
    return np.stack([np.interp(t_out, t_in, flat[:, j]) for j in range(flat.shape[1])], 1).reshape(-1, 20, 2)


def clip_from_video(path: Path, progress: bool = True) -> Clip:
    """Measure a talking video. Raises ``VideoError`` with the reason when it cannot be used."""
    import soxr

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    audio, rate = read_audio(path)
    track = track_face(path, progress=progress)
    if track.found.mean() < 0.5:
        raise VideoError(f"{path}: face found in only {track.found.mean():.0%} of frames")
    mouths = np.full((len(track.landmarks), 20, 2), np.nan)
    for k in np.flatnonzero(track.found):
        mouths[k] = to_canonical(track.landmarks[k])[MOUTH]
    mouths = fill_gaps(mouths, track.found)
    n = min(len(mouths), n_video_frames(len(audio), rate, track.fps))
    if n < 5:
        raise VideoError(f"{path}: only {n} frames with both audio and video")
    mouths = to_fps(mouths[:n], track.fps, FeatureConfig().fps)
    normalised = NEUTRAL_MOUTH + (mouths - rest_mouth(mouths))
    audio16 = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    return Clip(path.stem, audio16, normalised.astype(np.float32), FeatureConfig().fps, True)


def to_unit(mouth: np.ndarray, tcfg: TargetConfig) -> np.ndarray:
    """Canonical mouth (..., 20, 2) -> the [0, 1] box the network predicts in (flattened)."""
    lo, hi = np.asarray(tcfg.lo), np.asarray(tcfg.hi)
    unit = (mouth - lo) / (hi - lo)
    return unit.reshape(*mouth.shape[:-2], -1).astype(np.float32)


def from_unit(unit: np.ndarray, tcfg: TargetConfig) -> np.ndarray:
    lo, hi = np.asarray(tcfg.lo), np.asarray(tcfg.hi)
    return (unit.reshape(*unit.shape[:-1], 20, 2) * (hi - lo) + lo).astype(np.float32)


def features_and_targets(clip: Clip, fcfg: FeatureConfig, tcfg: TargetConfig) -> tuple[np.ndarray, np.ndarray]:
    """Frame-aligned (features (T, dim), targets (T, 40)) for one clip."""
    feats = frame_features(clip.audio, SAMPLE_RATE, fcfg, n_frames=len(clip.mouth))
    return feats, to_unit(clip.mouth, tcfg)


def load_dir(folder: Path, names: list[str] | None = None) -> list[Clip]:
    clips = [Clip.load(p) for p in sorted(Path(folder).glob("*.npz"))]
    return [c for c in clips if names is None or c.name in names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path, help="talking videos with audio (any format ffmpeg reads)")
    ap.add_argument("--out", type=Path, default=Path("build/lipsync/real"), help="folder for the .npz clips")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    from tqdm import tqdm

    for path in tqdm(args.videos, desc="videos", unit="video"):
        try:
            clip = clip_from_video(path)
        except VideoError as exc:
            log.error("skipped: %s", exc)
            failed += 1
            continue
        clip.save(args.out / f"{clip.name}.npz")
        log.info("%s: %d frames, opening %.3f..%.3f", clip.name, len(clip.mouth),
                 mouth_opening(clip.mouth).min(), mouth_opening(clip.mouth).max())
    return 1 if failed == len(args.videos) else 0


if __name__ == "__main__":
    sys.exit(main())
