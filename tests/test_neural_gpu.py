"""The CUDA path of the neural mouth generator (skipped without an NVIDIA GPU and onnxruntime-gpu)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.neural.config import CropConfig, NetConfig
from models.neural.export import export
from models.neural.networks import build_generator
from services.renderer.neural import MouthGenerator


@pytest.mark.gpu
def test_cuda_float16_generator_matches_the_cpu_one(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "g.onnx"
    export(build_generator(NetConfig(size=256)), CropConfig(size=256).to_dict(), path, fp16=True)
    gpu = MouthGenerator(path, prefer_gpu=True, fp16=True)
    cpu = MouthGenerator(path, prefer_gpu=False)
    assert gpu.device == "cuda" and gpu.path.name == "g_fp16.onnx"
    rng = np.random.default_rng(0)
    d, p, r = (rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(3))
    assert np.abs(gpu(d, p, r).astype(int) - cpu(d, p, r).astype(int)).mean() < 2.0
