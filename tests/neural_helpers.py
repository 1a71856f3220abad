"""Shared material for the neural renderer tests: one real GRID clip extracted once per process."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

GRID_CLIP = "bbaf2n"


@functools.lru_cache(maxsize=4)
def grid_clip(shared_data: Path, size: int = 32):
    """The GRID clip ``bbaf2n`` as a ``FaceClip`` (dlib runs once per test process)."""
    from models.neural.config import CropConfig
    from models.neural.dataset import Limits, extract

    return extract(shared_data / "talking" / "grid" / f"{GRID_CLIP}.mpg", CropConfig(size=size), Limits(min_seconds=0),
                   progress=False)


def tiny_train_config(mode: str = "temporal", size: int = 32, steps: int = 20):
    from models.neural.config import NetConfig, TrainConfig

    return TrainConfig(net=NetConfig(mode=mode, size=size, ngf=8, ndf=8), steps=steps, batch=4, checkpoint_every=5)


def canonical_face(size: float = 100.0, origin=(300.0, 200.0)) -> np.ndarray:
    """68 landmarks of the shipped neutral mouth in a frontal face ``size`` px between the eyes."""
    from assistant.face.mouth_shapes import NEUTRAL_MOUTH

    lm = np.zeros((68, 2))
    lm[36:42] = (-0.5, 0.0)
    lm[42:48] = (0.5, 0.0)
    lm[48:68] = NEUTRAL_MOUTH
    lm[30] = (0.0, 0.6)
    return lm * size + origin
