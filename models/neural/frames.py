"""Training and held-out frames of a set of ``FaceClip``s, and random batches of frame pairs.

Each clip holds out one contiguous block of ``heldout`` of its frames, starting at ``heldout_at``
of its length (so temporal flicker can be measured on it). The default block is the middle of
the clip: talking-head clips (GRID's certainly) start and end in silence, and a held-out tail of
closed mouths would flatter any model that just repeats the reference frame. Training draws
consecutive pairs (t-1, t) outside the block, plus the frame before them (t-2) as the "previous"
input of the pair's first frame. Each clip's reference frame (its most closed mouth) is chosen
among its training frames, never from the held-out block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from assistant.face.geometry import MOUTH, mouth_opening, to_canonical

from .dataset import FaceClip, mouth_in_crop


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    return t / 127.5 - 1.0


def to_images(t: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) in [-1, 1] -> (N, S, S, 3) uint8."""
    x = ((t.detach().clamp(-1, 1) + 1.0) * 127.5).round().byte()
    return x.permute(0, 2, 3, 1).cpu().numpy()


@dataclass
class Split:
    start: int
    end: int
    """Frames [start, end) are held out; the rest train."""
    reference: int
    """The clip's reference frame (a training frame)."""

    def held(self, t: int) -> bool:
        return self.start <= t < self.end


def split_clip(clip: FaceClip, heldout: float, heldout_at: float) -> Split:
    n = len(clip)
    k = int(round(heldout * n)) if heldout > 0 else 0
    start = min(max(int(round(heldout_at * n)), 0), n - k)
    sp = Split(start, start + k, 0)
    opening = mouth_opening(np.stack([to_canonical(f)[MOUTH] for f in clip.landmarks.astype(np.float64)]))
    train = [t for t in range(n) if not sp.held(t)]
    sp.reference = int(train[int(np.argmin(opening[train]))]) if train else clip.reference
    return sp


def lips_masks(clip: FaceClip) -> np.ndarray:
    """(T, S, S) uint8 0/1 per frame: inside the outer lip contour, grown by 1/32 of the side
    (teeth, tongue, the lips themselves: where the mouth's look follows the landmarks)."""
    import cv2

    s = clip.crop.size
    grow = max(1, s // 32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    out = np.zeros((len(clip), s, s), np.uint8)
    for t in range(len(clip)):
        pts = mouth_in_crop(clip.landmarks[t], clip.to_crop[t])[:12]
        cv2.fillPoly(out[t], [np.round(pts * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
        out[t] = cv2.dilate(out[t], kernel)
    return out


class FrameSet:
    """All clips, each split into training frames and one held-out block."""

    def __init__(self, clips: list[FaceClip], heldout: float = 0.2, heldout_at: float = 0.4) -> None:
        if not clips:
            raise ValueError("no clips to train on")
        sizes = {c.crops.shape[1] for c in clips}
        if len(sizes) != 1:
            raise ValueError(f"clips have different crop sizes {sorted(sizes)}")
        self.size = sizes.pop()
        self.clips = clips
        self.splits = [split_clip(c, heldout, heldout_at) for c in clips]
        self.pairs = [(ci, t) for ci, (c, sp) in enumerate(zip(clips, self.splits)) for t in range(1, len(c))
                      if not sp.held(t) and not sp.held(t - 1)]
        if not self.pairs:
            raise ValueError("no training frame pairs: clips too short")
        self.lips = [lips_masks(c) for c in clips]

    @property
    def train_frames(self) -> int:
        return sum(len(c) - (s.end - s.start) for c, s in zip(self.clips, self.splits))

    def describe(self) -> dict:
        """What a checkpoint records about its data: clips, held-out blocks, references."""
        return {"clips": [c.name for c in self.clips], "train_frames": self.train_frames,
                "heldout": [[s.start, s.end] for s in self.splits], "references": [s.reference for s in self.splits]}

    def batch(self, rng: np.random.Generator, n: int, augment: bool = True) -> dict[str, torch.Tensor]:
        """``n`` random pairs: drawings and frames at t-1 and t, the frame at t-2 (or the reference
        at the clip's start) and the clip's reference frame.

        Augmentation acts on a whole sample alike: a mirror flip (mouths are near symmetric) and
        a random colour gain per channel, which the generator can only undo by reading the
        reference frame's colours, so it learns to take colour from the reference.
        """
        keys = ("d_prev", "d", "before", "real_prev", "real", "ref", "m_prev", "m")
        out: dict[str, list[np.ndarray]] = {k: [] for k in keys}
        for _ in range(n):
            ci, t = self.pairs[int(rng.integers(len(self.pairs)))]
            c, sp = self.clips[ci], self.splits[ci]
            ref = c.crops[sp.reference]
            before = c.crops[t - 2] if t >= 2 and not sp.held(t - 2) else ref
            imgs = {"d_prev": c.drawings[t - 1], "d": c.drawings[t], "before": before, "real_prev": c.crops[t - 1],
                    "real": c.crops[t], "ref": ref, "m_prev": self.lips[ci][t - 1], "m": self.lips[ci][t]}
            if augment:
                flip = rng.random() < 0.5
                gain = rng.uniform(0.8, 1.2, 3)
                for k, v in imgs.items():
                    if flip:
                        v = v[:, ::-1]
                    if not k.startswith(("d", "m")):
                        v = np.clip(v.astype(np.float32) * gain, 0, 255).astype(np.uint8)
                    imgs[k] = v
            for k in keys:
                out[k].append(imgs[k])
        batch = {k: to_tensor(np.stack(v)) for k, v in out.items() if not k.startswith("m")}
        for k in ("m_prev", "m"):
            batch[k] = torch.from_numpy(np.ascontiguousarray(np.stack(out[k]))).float()[:, None]
        return batch
