"""The learned audio -> mouth driver: ``lipsync.onnx`` run through onnxruntime (no torch).

The model file carries its own feature and target settings (ONNX metadata ``lipsync``, JSON),
so a retrained model with other settings needs no code change here. Features come from
``assistant.face.audio_features``, the code training used. The network runs at the fps it was
trained at; other frame rates are resampled from its output.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from assistant.paths import package_file

from .audio_features import FeatureConfig, frame_features, n_video_frames, to_float_mono
from .mouth_shapes import NEUTRAL_MOUTH

log = logging.getLogger(__name__)
#: The shipped lip-sync model: package data of ``models.lipsync`` (found by name, not imported as code).
DEFAULT_MODEL = package_file("models.lipsync", "weights", "lipsync.onnx")


def providers(prefer_gpu: bool = True) -> list[str]:
    """CUDA first when onnxruntime-gpu sees a GPU, CPU always."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    chosen = [p for p in ("CUDAExecutionProvider",) if prefer_gpu and p in available]
    return chosen + ["CPUExecutionProvider"]


class LstmDriver:
    """``MouthDriver`` running the trained network. ``threads`` bounds onnxruntime's CPU use."""

    name = "lstm"
    neutral = NEUTRAL_MOUTH

    def __init__(self, model_path: str | Path = DEFAULT_MODEL, threads: int = 1, prefer_gpu: bool = True) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError("LstmDriver needs onnxruntime: pip install 'embodied-assistant[cpu]' (or [gpu])") from exc
        path = Path(model_path)
        if not path.is_file():
            raise FileNotFoundError(f"lip-sync model {path} is missing; train it with python -m models.lipsync.train")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=providers(prefer_gpu))
        meta = json.loads(self.session.get_modelmeta().custom_metadata_map.get("lipsync", "{}"))
        self.features = FeatureConfig(**meta.get("features", {}))
        lo, hi = meta.get("target_lo", (-0.7, 0.8)), meta.get("target_hi", (0.7, 1.8))
        self._lo, self._span = np.asarray(lo, np.float32), np.asarray(hi, np.float32) - np.asarray(lo, np.float32)
        self._input = self.session.get_inputs()[0].name
        log.info("lip-sync model %s on %s", path.name, self.session.get_providers()[0])

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """(frames, dim) features -> (frames, 20, 2) canonical mouths at the model's fps."""
        if len(feats) == 0:
            return np.zeros((0, 20, 2), np.float32)
        unit = self.session.run(None, {self._input: feats[None].astype(np.float32)})[0][0]
        return (unit.reshape(-1, 20, 2) * self._span + self._lo).astype(np.float32)

    def drive(self, pcm, sample_rate, fps, phonemes=None, alphabet=""):
        x = to_float_mono(pcm)
        n_out = n_video_frames(len(x), sample_rate, fps)
        if n_out == 0:
            return np.zeros((0, 20, 2), np.float32)
        mfps = self.features.fps
        n_model = n_video_frames(len(x), sample_rate, mfps)
        mouths = self.predict(frame_features(x, sample_rate, self.features, n_frames=n_model))
        if abs(fps - mfps) < 1e-6:
            return mouths[:n_out]
        t_out = np.arange(n_out) / fps * mfps  # model frame index of each output frame
        i0 = np.clip(np.floor(t_out).astype(int), 0, n_model - 1)
        i1 = np.clip(i0 + 1, 0, n_model - 1)
        w = (t_out - i0)[:, None, None]
        return ((1 - w) * mouths[i0] + w * mouths[i1]).astype(np.float32)
