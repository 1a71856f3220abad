"""A neutral mouth and a three-parameter mouth model (opening, width, rounding), numpy only.

``NEUTRAL_MOUTH`` is the mean closed mouth of the ten GRID speakers measured by dlib's 68-point
predictor in the canonical frame (``assistant.face.geometry``), mirrored to be symmetric about
x = 0. ``articulate`` bends it into a viseme: the phoneme and energy drivers speak through it,
so every driver moves the same points the same way.
"""

from __future__ import annotations

import numpy as np

_MEASURED = np.array([
    [-0.392, 1.167], [-0.246, 1.095], [-0.101, 1.048], [0.002, 1.080], [0.103, 1.050],
    [0.251, 1.099], [0.410, 1.169], [0.257, 1.271], [0.113, 1.312], [0.006, 1.323],
    [-0.105, 1.312], [-0.248, 1.267], [-0.325, 1.167], [-0.102, 1.156], [0.002, 1.170],
    [0.105, 1.157], [0.339, 1.168], [0.107, 1.170], [0.005, 1.183], [-0.099, 1.170],
])
# Mirror partner of each of the 20 mouth points (48<->54, 49<->53, ..., 60<->64, 65<->67).
_MIRROR = np.array([6, 5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 16, 15, 14, 13, 12, 19, 18, 17])


def _symmetric(m: np.ndarray) -> np.ndarray:
    mirrored = m[_MIRROR] * [-1.0, 1.0]
    out = (m + mirrored) / 2
    return out - [out[:, 0].mean(), 0.0]


NEUTRAL_MOUTH = _symmetric(_MEASURED).astype(np.float32)
"""(20, 2) closed, relaxed mouth in the canonical frame."""

# Which points belong to which lip, and how much of a movement they take: the middle of a lip
# moves fully, points next to the corners about half, the corners follow the jaw a little.
_UPPER = np.array([0, 0.5, 0.9, 1, 0.9, 0.5, 0, 0, 0, 0, 0, 0, 0, 0.8, 1, 0.8, 0, 0, 0, 0])
_LOWER = np.array([0, 0, 0, 0, 0, 0, 0, 0.6, 0.95, 1, 0.95, 0.6, 0, 0, 0, 0, 0, 0.8, 1, 0.8])
_CORNER = np.array([1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0], dtype=float)
_OUTER = np.r_[np.ones(12), np.zeros(8)]


def articulate(opening, width=0.0, rounding=0.0, neutral: np.ndarray = NEUTRAL_MOUTH) -> np.ndarray:
    """Mouths (..., 20, 2) for parameter arrays of one shape (broadcast together).

    ``opening``: extra inner-lip gap in canonical units (0 closed, 0.25 wide open; a quarter of
    it lifts the upper lip, the rest drops the jaw). ``width``: relative change of the mouth
    width (-0.2 pursed .. +0.15 spread). ``rounding``: 0..1, narrows the corners and pushes
    the outer lips out (protrusion seen from the front).
    """
    o, w, r = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (opening, width, rounding)))
    o, w, r = o[..., None], w[..., None], r[..., None]
    base = np.asarray(neutral, dtype=np.float64)
    cx = base[:, 0].mean()
    x = cx + (base[:, 0] - cx) * (1.0 + w - 0.22 * r * (0.4 + 0.6 * (_CORNER + _OUTER * 0.5)))
    y = (
        base[:, 1]
        - 0.25 * o * _UPPER
        + 0.75 * o * _LOWER
        + 0.3 * o * _CORNER
        - 0.03 * r * _UPPER * _OUTER
        + 0.04 * r * _LOWER * _OUTER
    )
    return np.stack([x, y], axis=-1).astype(np.float32)
