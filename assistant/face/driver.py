"""The mouth-driver interface: an utterance's audio (and phonemes, when known) -> mouth per frame.

Implementations: the phoneme/viseme driver, the audio-only driver, and the learned
audio -> landmarks network run through onnxruntime. The renderer needs nothing else from them.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from assistant.messages import Phoneme


class MouthDriver(Protocol):
    """Turns an utterance into mouth landmarks, one set per video frame."""

    name: str
    """Short name for logs and ``renderer.stats`` (``viseme``, ``energy``, ``lstm``)."""

    neutral: np.ndarray
    """(20, 2) closed, relaxed mouth in the canonical frame (``assistant.face.geometry``).

    Renderers animate their own avatar's mouth by the driver's offset from this shape, so a
    driver's idea of a typical mouth never replaces the avatar's own.
    """

    def drive(
        self,
        pcm: np.ndarray,
        sample_rate: int,
        fps: float,
        phonemes: Sequence[Phoneme] | None = None,
        alphabet: str = "",
    ) -> np.ndarray:
        """Mouth landmarks for every frame of the utterance.

        ``pcm`` is mono audio (int16 or float in [-1, 1]); frame ``k`` shows time ``k / fps``
        from the first sample; the result has ``ceil(len(pcm) / sample_rate * fps)`` frames and
        shape (frames, 20, 2) in the canonical frame, float32.
        """
        ...
