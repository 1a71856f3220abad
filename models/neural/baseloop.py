"""The avatar's base video: a loop of the person's own frames that the generated mouth is put into.

Between words (and under every generated mouth) the renderer shows real frames of the person,
so the head moves and the eyes blink as they did in the recording; only the masked mouth region
is generated (the seed's masked insertion). The loop is cut from the training part of the first
video (never the held-out tail):

- candidates are every stretch of ``min_s``-``max_s`` seconds; each is scored by how far its
  last frame is from the frame before its first (a small grey thumbnail of the whole frame plus
  the head's position, size and tilt from the landmarks: the seam), plus how much the mouth
  moves in it (a calm mouth leaves less of the real jaw's speech motion around the mask);
- the best one is closed with a crossfade: its last ``fade`` frames are blended towards the
  frames that precede its first, so the frame after the last is the first again, continuously;
  the crop placement (image -> crop affine) is blended the same way;
- frames are stored as JPEG (quality 95) in ``base_loop.npz`` with their affines, the person's
  rest mouth in canonical units (the driver's offsets are added to it) and the frame rate.

The renderer reads the file with :class:`services.renderer.neural.BaseLoop` (no torch).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from assistant.face.geometry import MOUTH, mouth_opening, to_canonical

from .dataset import FaceClip, iter_frames

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoopChoice:
    start: int
    length: int
    fade: int
    seam: float
    """Seam cost of the chosen loop (thumbnail grey levels + pose, before the crossfade)."""
    motion: float
    """Mean frame-to-frame mouth change in the loop (canonical units)."""


def _thumbs(path: Path, n: int, size: int = 24) -> np.ndarray:
    out = np.zeros((n, size * size), np.float32)
    for k, frame in enumerate(iter_frames(path)):
        if k == n:
            break
        g = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        out[k] = cv2.resize(g, (size, size), interpolation=cv2.INTER_AREA).reshape(-1)
    return out


def _pose(landmarks: np.ndarray) -> np.ndarray:
    """(T, 4): eye centre x, y and inter-ocular distance (pixels), tilt (degrees)."""
    lm = np.asarray(landmarks, np.float64)
    left, right = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    d = right - left
    c = (left + right) / 2
    return np.column_stack([c, np.hypot(d[:, 0], d[:, 1]), np.degrees(np.arctan2(d[:, 1], d[:, 0]))])


def choose_loop(thumbs: np.ndarray, landmarks: np.ndarray, usable: int, fps: float, min_s: float = 4.0,
                max_s: float = 10.0, fade: int = 8, calm: float = 1.0) -> LoopChoice:
    """The best loop among frames [0, usable) (see the module doc)."""
    n = min(usable, len(thumbs))
    fade = max(2, min(fade, n // 8))  # short footage (tests, a few seconds): a shorter fade and loop
    lo, hi = max(2 * fade + 2, round(min_s * fps)), round(max_s * fps)
    lo = max(2 * fade + 2, min(lo, n - fade - 2))
    if n < lo + fade + 2:
        raise ValueError(f"{n} training frames are too few for a base loop")
    hi = max(lo, min(hi, n - fade - 1))
    pose = _pose(landmarks[:n])
    iod = float(np.median(pose[:, 2]))
    mouths = np.stack([to_canonical(f)[MOUTH] for f in np.asarray(landmarks[:n], np.float64)])
    change = np.r_[0.0, np.abs(np.diff(mouths, axis=0)).mean(axis=(1, 2))]
    csum = np.cumsum(change)
    opening = mouth_opening(mouths)
    best = None
    for a in range(fade, n - lo):
        ends = np.arange(a + lo, min(a + hi, n - 1) + 1)  # the loop is [a, e); frame e-1 must meet frame a-1
        if not len(ends):
            continue
        img = np.abs(thumbs[ends - 1] - thumbs[a - 1]).mean(axis=1)
        dp = pose[ends - 1] - pose[a - 1]
        geo = np.hypot(dp[:, 0], dp[:, 1]) / iod * 100 + np.abs(dp[:, 2]) / iod * 100 + np.abs(dp[:, 3])
        seam = img + geo + 20 * np.abs(opening[ends - 1] - opening[a - 1])
        motion = (csum[ends - 1] - csum[a]) / (ends - 1 - a)
        cost = seam + calm * 200 * motion
        i = int(np.argmin(cost))
        if best is None or cost[i] < best[0]:
            best = (float(cost[i]), a, int(ends[i]), float(seam[i]), float(motion[i]))
    assert best is not None
    _, a, e, seam, motion = best
    return LoopChoice(a, e - a, fade, seam, motion)


def write_loop(out: Path, video: Path, clip: FaceClip, usable: int, reference: int, min_s: float = 4.0, max_s: float = 10.0,
               fade: int = 8, jpeg_quality: int = 95) -> LoopChoice:
    """Choose the loop among the first ``usable`` frames of ``video`` and write ``out`` (.npz);
    ``reference``: the generator's reference frame (its crop is stored with the loop)."""
    from models.lipsync.dataset import rest_mouth

    thumbs = _thumbs(video, usable)
    ch = choose_loop(thumbs, clip.landmarks, usable, clip.fps, min_s, max_s, fade)
    a, e, k = ch.start, ch.start + ch.length, ch.fade
    need = range(a - k, e)
    frames: dict[int, np.ndarray] = {}
    for t, frame in enumerate(iter_frames(video)):
        if t >= e:
            break
        if t in need:
            frames[t] = frame
    jpegs, affines, marks = [], [], []
    for t in range(a, e):
        img, m, lm = frames[t], clip.to_crop[t], clip.landmarks[t].astype(np.float64)
        j = t - (e - k)  # inside the fade: blend towards the frames before the loop's start
        if j >= 0:
            w = (j + 1) / (k + 1)
            img = cv2.addWeighted(img, 1 - w, frames[a - k + j], w, 0)
            m = (1 - w) * m + w * clip.to_crop[a - k + j]
            lm = (1 - w) * lm + w * clip.landmarks[a - k + j]
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        jpegs.append(buf.reshape(-1))
        affines.append(m)
        marks.append(lm)
    mouths = np.stack([to_canonical(f)[MOUTH] for f in clip.landmarks[:usable].astype(np.float64)])
    offsets = np.cumsum([0] + [len(j) for j in jpegs])
    tmp = out.with_name(out.stem + ".tmp.npz")
    np.savez(tmp, jpeg=np.concatenate(jpegs), offsets=offsets, to_crop=np.stack(affines), landmarks=np.stack(marks),
             reference=clip.crops[reference],
             rest_mouth=rest_mouth(mouths).astype(np.float64), fps=float(clip.fps), start=a, fade=k,
             size=np.array(frames[a].shape[1::-1]))
    tmp.replace(out)
    log.info("base loop: frames %d-%d of %s (%.1f s), seam %.1f, mouth motion %.4f", a, e, video.name,
             ch.length / clip.fps, ch.seam, ch.motion)
    return ch
