"""Talking video -> the neural renderer's dataset: aligned mouth crops, landmark drawings, audio.

``python -m models.neural.dataset VIDEO... --out build/neural/data --size 64`` writes one
``.npz`` per video. Faces and dlib's 68 landmarks come from ``models.lipsync.video`` (the same
tracking the lip-sync model was trained with); each frame's mouth region is resampled into the
canonical crop (``assistant.face.mouth_crop``) and the 20 mouth points are drawn into it. The
same track also gives the lip-sync ``Clip`` (canonical mouth per frame + 16 kHz audio) used to
fine-tune the audio -> landmarks model on this person.

Unusable input raises :class:`VideoError` with the reason: no audio, no face, face lost too
often, too short, heavy head motion.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from assistant.face.geometry import MOUTH, apply_affine, mouth_opening, to_canonical
from assistant.face.mouth_crop import draw_mouth, image_to_crop, smooth_eye_tracks, warp_to_crop
from assistant.face.mouth_shapes import NEUTRAL_MOUTH
from models.lipsync.dataset import SAMPLE_RATE, Clip, fill_gaps, rest_mouth
from models.lipsync.video import VideoError, read_audio, track_face

from .config import CropConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What makes a video unusable for an avatar (each limit names its reason in the error)."""

    min_seconds: float = 20.0
    """Shortest total footage: a generator learns a person's mouth from thousands of frames; a
    few seconds gives a few dozen distinct shapes. GRID clips (3 s) each fall below this."""
    min_face_fraction: float = 0.9
    """Frames with a detected face; gaps are interpolated, but not many."""
    max_roll_deg: float = 20.0
    """Head tilt range across the video."""
    max_turn: float = 0.25
    """Range of the nose tip's sideways position (canonical units): a proxy for turning the head,
    which the 2-D crop cannot undo."""
    max_scale_ratio: float = 1.4
    """Largest / smallest face size (leaning in and out)."""
    max_speed: float = 0.12
    """95th percentile of the face's motion per frame in inter-ocular units: faster is motion blur."""


@dataclass
class FaceClip:
    """One video's training material, all frame-aligned."""

    name: str
    crops: np.ndarray
    """(T, S, S, 3) uint8 BGR mouth crops."""
    drawings: np.ndarray
    """(T, S, S, 3) uint8 landmark drawings (``draw_mouth``)."""
    landmarks: np.ndarray
    """(T, 68, 2) float32 image-pixel landmarks, gaps interpolated."""
    to_crop: np.ndarray
    """(T, 2, 3) float64 image -> crop affines (from time-smoothed eye positions)."""
    reference: int
    """Index of the reference frame: the most closed mouth (the person at rest)."""
    fps: float
    audio: np.ndarray
    """float32 mono speech at 16 kHz."""
    crop: CropConfig

    def __len__(self) -> int:
        return len(self.crops)

    def save(self, path: Path) -> None:
        import json

        np.savez(path, name=self.name, crops=self.crops, drawings=self.drawings, landmarks=self.landmarks,
                 to_crop=self.to_crop, reference=self.reference, fps=self.fps, audio=self.audio,
                 crop=json.dumps(self.crop.to_dict()))

    @classmethod
    def load(cls, path: Path) -> "FaceClip":
        import json

        z = np.load(path)
        return cls(str(z["name"]), z["crops"], z["drawings"], z["landmarks"], z["to_crop"], int(z["reference"]),
                   float(z["fps"]), z["audio"], CropConfig.from_dict(json.loads(str(z["crop"]))))

    def segment(self, start: int, end: int, audio_lag: int = 0) -> "FaceClip":
        """Frames [start, end) with their audio (the reference index is kept only when inside);
        ``audio_lag``: frames by which the recording's sound comes after its picture (the audio
        taken is that of frames [start + lag, end + lag), so sound and mouth line up)."""
        per = SAMPLE_RATE / self.fps
        a, b = round(max(0, start + audio_lag) * per), round(max(0, end + audio_lag) * per)
        ref = self.reference - start if start <= self.reference < end else 0
        return FaceClip(f"{self.name}[{start}:{end}]", self.crops[start:end], self.drawings[start:end],
                        self.landmarks[start:end], self.to_crop[start:end], ref, self.fps, self.audio[a:b], self.crop)

    def lipsync_clip(self) -> Clip:
        """This footage as a lip-sync training clip (canonical mouth, speaker's rest replaced by the neutral)."""
        mouths = np.stack([to_canonical(lm)[MOUTH] for lm in self.landmarks.astype(np.float64)])
        n = min(len(mouths), int(len(self.audio) / SAMPLE_RATE * self.fps + 1e-9))
        mouths = mouths[:n]
        return Clip(self.name, self.audio, (NEUTRAL_MOUTH + (mouths - rest_mouth(mouths))).astype(np.float32), self.fps)


def audio_lag(clip: FaceClip, spans: list[tuple[int, int]], max_lag: int = 8, min_corr: float = 0.2,
              min_gain: float = 0.1) -> tuple[int, dict]:
    """Frames by which a recording's sound comes after its picture (positive: the audio is late),
    estimated on ``spans`` (the training frames) only: the lag in [-max_lag, max_lag] at which the
    shipped audio -> landmarks model's mouth opening, run on the audio, best matches the tracked
    opening. 0 unless the best lag is clearly better than lag 0 (by ``min_gain`` in correlation)
    and itself a real match (``min_corr``). Some recordings are muxed a few frames off; lip sync
    trained or judged on them at lag 0 would learn or report the offset."""
    from assistant.face.lstm_driver import DEFAULT_MODEL, LstmDriver

    if not DEFAULT_MODEL.is_file():
        return 0, {"skipped": "no lip-sync model"}
    driver = LstmDriver(DEFAULT_MODEL, threads=1, prefer_gpu=False)
    tracked = mouth_opening(np.stack([to_canonical(f)[MOUTH] for f in clip.landmarks.astype(np.float64)]))
    per = SAMPLE_RATE / clip.fps
    pairs: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in range(-max_lag, max_lag + 1)}
    for a, b in spans:
        if b - a < 4 * max_lag:
            continue
        pcm = np.clip(clip.audio[int(a * per):int(b * per)] * 32767, -32768, 32767).astype(np.int16)
        pred = mouth_opening(NEUTRAL_MOUTH + np.asarray(driver.drive(pcm, SAMPLE_RATE, clip.fps), np.float64))
        n = min(len(pred), b - a)
        pred, real = pred[:n], tracked[a:a + n]
        for k in pairs:  # pred[t] is the sound of frame a + t; compare it with the picture at a + t - k
            pairs[k].append((pred[k:], real[:n - k]) if k >= 0 else (pred[:n + k], real[-k:]))
    corr = {}
    for k, ps in pairs.items():
        if not ps:
            continue
        x, y = np.concatenate([p[0] for p in ps]), np.concatenate([p[1] for p in ps])
        corr[k] = float(np.corrcoef(x, y)[0, 1]) if len(x) > 2 and x.std() > 0 and y.std() > 0 else 0.0
    if not corr:
        return 0, {"skipped": "no training stretch long enough"}
    best = max(corr, key=corr.get)
    lag = best if corr[best] >= min_corr and corr[best] - corr.get(0, 0.0) >= min_gain else 0
    return lag, {"lag_frames": lag, "best": best, "corr_best": round(corr[best], 3), "corr_0": round(corr.get(0, 0.0), 3)}


def mouth_in_crop(landmarks: np.ndarray, to_crop: np.ndarray) -> np.ndarray:
    """(20, 2) crop-pixel mouth points of one frame."""
    return apply_affine(to_crop, np.asarray(landmarks, np.float64)[MOUTH])


def check_motion(landmarks: np.ndarray, limits: Limits, name: str) -> None:
    """Raise ``VideoError`` when the head moves too much for a 2-D mouth crop."""
    lm = np.asarray(landmarks, np.float64)
    left, right = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    d = right - left
    iod = np.hypot(d[:, 0], d[:, 1])
    roll = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    roll_range = float(np.percentile(roll, 98) - np.percentile(roll, 2))
    if roll_range > limits.max_roll_deg:
        raise VideoError(f"{name}: heavy head motion: the head tilts over {roll_range:.0f} degrees"
                         f" (limit {limits.max_roll_deg:.0f}); film the person facing the camera, head still")
    scale = float(np.percentile(iod, 98) / max(np.percentile(iod, 2), 1e-6))
    if scale > limits.max_scale_ratio:
        raise VideoError(f"{name}: heavy head motion: the face changes size {scale:.2f}x"
                         f" (limit {limits.max_scale_ratio:.2f}x); keep the distance to the camera steady")
    nose_x = np.array([to_canonical(f)[30, 0] for f in lm])
    turn = float(np.percentile(nose_x, 98) - np.percentile(nose_x, 2))
    if turn > limits.max_turn:
        raise VideoError(f"{name}: heavy head motion: the head turns sideways (nose shifts {turn:.2f}"
                         f" eye-distances, limit {limits.max_turn:.2f}); film a frontal face")
    centre = (left + right) / 2
    speed = np.hypot(*np.diff(centre, axis=0).T) / iod[1:]
    fast = float(np.percentile(speed, 95)) if len(speed) else 0.0
    if fast > limits.max_speed:
        raise VideoError(f"{name}: heavy head motion: the face moves {fast:.2f} eye-distances per frame"
                         f" (limit {limits.max_speed:.2f}); motion blur would be learned as the mouth")


def head_of(src: Path, dst: Path, seconds: float) -> None:
    """The first ``seconds`` of a recording, remuxed without re-encoding (PyAV): short builds for
    tests and the bench's smoke run."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        streams = [s for s in inp.streams if s.type in ("video", "audio")]
        omap = {s.index: out.add_stream_from_template(s) for s in streams}
        for pkt in inp.demux(streams):
            if pkt.dts is None or pkt.pts is None or float(pkt.pts * pkt.time_base) >= seconds:
                continue
            pkt.stream = omap[pkt.stream.index]
            out.mux(pkt)


def iter_frames(path: Path):
    """BGR frames of a video one at a time (a long full-HD video does not fit in memory at once)."""
    cap = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return
            yield frame
    finally:
        cap.release()


def read_frames(path: Path, limit: int | None = None) -> list[np.ndarray]:
    out = []
    for frame in iter_frames(path):
        if limit is not None and len(out) >= limit:
            break
        out.append(frame)
    return out


def extract(path: Path, crop: CropConfig, limits: Limits = Limits(), progress=True) -> FaceClip:
    """Measure one talking video. Raises ``VideoError`` with the reason when it cannot be used.

    ``limits.min_seconds`` is checked here for one video; the avatar builder checks it on the total.
    ``progress``: as ``models.lipsync.video.track_face``'s (True: a bar; a function: called with
    frames tracked and the total).
    """
    import soxr

    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such file")
    audio, rate = read_audio(path)  # first: a silent video is refused before minutes of tracking
    track = track_face(path, progress=progress)
    found = track.found
    if found.mean() < limits.min_face_fraction:
        raise VideoError(f"{path}: face found in only {found.mean():.0%} of frames"
                         f" (need {limits.min_face_fraction:.0%}); keep one face in view throughout")
    lm = fill_gaps(track.landmarks, found)
    n = min(len(lm), int(len(audio) / rate * track.fps + 1e-9))
    if n < 8:
        raise VideoError(f"{path}: only {n} frames with both audio and video")
    if n / track.fps < limits.min_seconds:
        raise VideoError(f"{path}: too short: {n / track.fps:.1f} s of talking video, need {limits.min_seconds:.0f} s")
    lm = lm[:n]
    check_motion(lm, limits, str(path))
    stable = smooth_eye_tracks(lm)
    s = crop.size
    to_crop = np.stack([image_to_crop(f, crop.centre, crop.half, s) for f in stable])
    crops = np.zeros((n, s, s, 3), np.uint8)
    k = 0
    for frame in iter_frames(path):  # second pass, streamed: only the crops are kept
        if k == n:
            break
        crops[k] = warp_to_crop(frame, to_crop[k], s)
        k += 1
    if k < n:
        raise VideoError(f"{path}: {k} frames decoded, {n} tracked")
    drawings = np.stack([draw_mouth(mouth_in_crop(pts, m), s) for pts, m in zip(lm, to_crop)])
    opening = mouth_opening(np.stack([to_canonical(f)[MOUTH] for f in lm]))
    reference = int(np.argmin(opening[: max(1, int(0.8 * n))]))  # from the part every split trains on
    audio16 = soxr.resample(audio, rate, SAMPLE_RATE).astype(np.float32)
    log.info("%s: %d frames, %dx%d crops, reference frame %d", path.name, n, s, s, reference)
    return FaceClip(path.stem, crops, drawings, lm.astype(np.float32), to_crop, reference, float(track.fps), audio16, crop)


def rest_frame(path: Path, index: int) -> np.ndarray:
    """Full-resolution frame ``index`` of a video (the avatar's portrait)."""
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, frame = cap.read()
    cap.release()
    if not ok:  # some containers cannot seek: read through
        frame = read_frames(path, index + 1)[-1]
    return frame


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=Path("build/neural/data"))
    ap.add_argument("--size", type=int, default=CropConfig.size)
    ap.add_argument("--min-seconds", type=float, default=0.0, help="per video (the builder checks the total)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for path in args.videos:
        try:
            clip = extract(path, CropConfig(size=args.size), Limits(min_seconds=args.min_seconds))
        except VideoError as exc:
            log.error("skipped: %s", exc)
            failed += 1
            continue
        clip.save(args.out / f"{clip.name}.npz")
    return 1 if failed == len(args.videos) else 0


if __name__ == "__main__":
    sys.exit(main())
