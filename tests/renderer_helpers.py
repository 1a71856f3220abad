"""Test helpers for the renderer: a tiny RMS mouth driver, speech loading, dlib measurements."""

from __future__ import annotations

import math

import numpy as np

from assistant.face.geometry import to_canonical


class RmsDriver:
    """Implements ``MouthDriver`` trivially: the jaw opens with the audio's loudness."""

    name = "rms-test"
    neutral = np.zeros((20, 2), np.float32)

    def drive(self, pcm, sample_rate, fps, phonemes=None, alphabet=""):
        x = np.asarray(pcm, dtype=np.float32)
        if x.dtype != np.float32 or np.abs(x).max() > 1.5:
            x = x / 32768.0
        n = math.ceil(len(x) / sample_rate * fps)
        hop = sample_rate / fps
        rms = np.array([np.sqrt(np.mean(x[int(k * hop):int((k + 1) * hop)] ** 2) + 1e-12) for k in range(n)])
        db = 20 * np.log10(rms + 1e-9)
        opening = np.clip((db - (db.max() - 35)) / 30, 0, 1) * 0.3  # inter-ocular units
        out = np.zeros((n, 20, 2), np.float32)
        out[:, [7, 8, 9, 10, 11, 17, 18, 19], 1] = opening[:, None]  # lower lip down
        out[:, [7, 11], 1] *= 0.7
        out[:, [1, 2, 3, 4, 5, 13, 14, 15], 1] = -0.12 * opening[:, None]  # upper lip up a little
        out[:, [0, 12], 0] = 0.03 * opening[:, None]  # corners in
        out[:, [6, 16], 0] = -0.03 * opening[:, None]
        return out


def frame_rms(pcm: np.ndarray, sample_rate: int, fps: float) -> np.ndarray:
    """Speech activity: RMS of the audio under each video frame."""
    x = np.asarray(pcm, dtype=np.float32) / 32768.0
    n = math.ceil(len(x) / sample_rate * fps)
    hop = sample_rate / fps
    return np.array([np.sqrt(np.mean(x[int(k * hop):int((k + 1) * hop)] ** 2) + 1e-12) for k in range(n)])


class PixelLandmarks:
    """dlib's 68 points measured on rendered pixels (face box found once, then reused)."""

    def __init__(self):
        import dlib

        from services.renderer.avatar import predictor_path

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path()))
        self.box = None

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
        if self.box is None:
            boxes = self.detector(rgb, 0)
            assert boxes, "dlib finds no face in the rendered frame"
            self.box = max(boxes, key=lambda b: b.area())
        shape = self.predictor(rgb, self.box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def inner_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap (62-66) in inter-ocular units, from 68 image points."""
    c = to_canonical(landmarks)
    return float(np.hypot(*(c[66] - c[62])))


def eye_aspect(landmarks: np.ndarray) -> float:
    """Mean eye aspect ratio (lid gap / eye width) of both eyes."""
    def one(e):
        return (np.hypot(*(e[1] - e[5])) + np.hypot(*(e[2] - e[4]))) / (2 * np.hypot(*(e[0] - e[3])))
    return float((one(landmarks[36:42]) + one(landmarks[42:48])) / 2)


_AVATAR = None


def default_avatar():
    """The shipped portrait's avatar, built once per test session (no cache on disk)."""
    global _AVATAR
    if _AVATAR is None:
        from services.renderer.avatar import Avatar

        _AVATAR = Avatar.build(None, None)
    return _AVATAR


def load_speech(shared_data, index: int = 0) -> tuple[np.ndarray, int]:
    """A LibriVox clip as int16 mono and its rate."""
    import soundfile as sf

    files = sorted((shared_data / "speech" / "librivox").glob("*.wav"))
    pcm, sr = sf.read(files[index], dtype="int16")
    if pcm.ndim > 1:
        pcm = pcm[:, 0]
    return pcm, sr
