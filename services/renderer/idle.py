"""Idle life: blinks, breathing and sway, gaze toward the visitor, a listening pose.

Everything is a continuous function of time plus smoothed state, so nothing jumps when speech
starts or ends or when the visitor moves; randomness (blink intervals, micro-saccades, sway
phases) comes from one seeded generator and is drawn only at scheduled events, so a run is
reproducible for a given seed and sequence of times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .synth import HeadPose


@dataclass(frozen=True)
class IdleSettings:
    """Tuning of :class:`IdleLife`; times in seconds, distances in inter-ocular units."""

    blink_median_s: float = 3.5
    """Median time between blinks (adults at rest: ~15-20 blinks a minute)."""
    blink_spread: float = 0.35
    """Log-normal sigma of the blink interval (natural intervals are skewed, not periodic)."""
    blink_min_s: float = 1.5
    blink_max_s: float = 8.0
    double_blink: float = 0.1
    """Probability that a blink is followed at once by a second one (never a third: people blink
    in ones and occasional twos, not bursts)."""
    double_gap_s: tuple[float, float] = (0.2, 0.4)
    """Open time between the two blinks of a double."""
    blink_close_s: float = 0.08
    blink_hold_s: float = 0.03
    blink_open_s: float = 0.16
    """A lid closes fast and opens about twice as slowly."""
    breath_period_s: float = 4.2
    breath_scale: float = 0.003
    """Relative size change at the top of a breath (shoulders rise, head comes forward)."""
    sway: float = 0.02
    """Amplitude of the slow side-to-side and up-down head drift."""
    sway_roll_deg: float = 0.6
    speaking_motion: float = 1.6
    """Head motion is livelier while speaking, by this factor."""
    gaze_tau_s: float = 0.07
    """Eyes reach a new target quickly (a saccade), the head follows slowly (``head_tau_s``)."""
    head_tau_s: float = 0.7
    head_follow: float = 0.08
    """Head shift toward the gaze target at full deflection (a slight head turn)."""
    saccade_every_s: tuple[float, float] = (0.8, 3.0)
    saccade_size: float = 0.12
    """Small random eye movements so the eyes never freeze, also while looking at someone."""
    listen_roll_deg: float = 2.5
    listen_lean: float = 0.015
    pose_tau_s: float = 0.4
    """How fast the listening pose comes and goes."""


@dataclass(frozen=True)
class IdleState:
    """What the synthesiser needs from idle life for one frame."""

    blink: float
    """0 open .. 1 closed."""
    gaze: tuple[float, float]
    """Iris direction on screen, x right / y down, in [-1, 1]."""
    head: HeadPose
    """Head motion."""


def _approach(value: float, target: float, dt: float, tau: float) -> float:
    return target + (value - target) * math.exp(-dt / tau) if tau > 0 else target


class IdleLife:
    """Deterministic (given ``seed`` and the times passed to :meth:`step`) idle animation."""

    def __init__(self, settings: IdleSettings = IdleSettings(), seed: int = 0):
        self.s = settings
        self.rng = np.random.default_rng(seed)
        self._phases = self.rng.uniform(0, 2 * math.pi, 6)
        self._freqs = self.rng.uniform(0.05, 0.16, 3)  # slow drifts: 6 to 20 s periods
        self._t: float | None = None
        self._next_blink = 0.0
        self._blink_start = -10.0
        self._was_double = False
        self._next_saccade = 0.0
        self._saccade = np.zeros(2)
        self._target: tuple[float, float] | None = None
        self._listening = False
        self._gaze = np.zeros(2)
        self._head_turn = 0.0
        self._listen = 0.0
        self._lively = 1.0

    def set_target(self, gaze: tuple[float, float] | None) -> None:
        """Where the visitor is, as an on-screen gaze direction in [-1, 1], or None when nobody is there."""
        self._target = None if gaze is None else (float(np.clip(gaze[0], -1, 1)), float(np.clip(gaze[1], -1, 1)))

    def set_listening(self, listening: bool) -> None:
        """The visitor is speaking: take the listening pose."""
        self._listening = bool(listening)

    def _blink_interval(self) -> float:
        s = self.s
        return float(np.clip(s.blink_median_s * math.exp(self.rng.normal(0, s.blink_spread)),
                             s.blink_min_s, s.blink_max_s))

    def _blink(self, t: float) -> float:
        s = self.s
        if t >= self._next_blink:
            self._blink_start = self._next_blink
            length = s.blink_close_s + s.blink_hold_s + s.blink_open_s
            double = not self._was_double and self.rng.random() < s.double_blink
            self._was_double = double
            gap = self.rng.uniform(*s.double_gap_s) if double else self._blink_interval()
            self._next_blink = self._blink_start + length + gap
        u = t - self._blink_start
        if u < 0:
            return 0.0
        if u < s.blink_close_s:
            x = u / s.blink_close_s
        elif u < s.blink_close_s + s.blink_hold_s:
            x = 1.0
        else:
            x = 1.0 - (u - s.blink_close_s - s.blink_hold_s) / s.blink_open_s
        x = min(max(x, 0.0), 1.0)
        return x * x * (3 - 2 * x)

    def step(self, t: float, speaking: bool = False) -> IdleState:
        """Idle state at monotonic time ``t`` (seconds); call with non-decreasing times."""
        s = self.s
        if self._t is None:
            self._t = t
            self._next_blink = t + self.rng.uniform(0.5, s.blink_median_s)
            self._next_saccade = t + self.rng.uniform(*s.saccade_every_s)
        dt = min(max(t - self._t, 0.0), 0.25)  # a stall must not fling the head
        self._t = t
        if t >= self._next_saccade:
            self._saccade = self.rng.normal(0, s.saccade_size, 2) * (1.0, 0.5)
            self._next_saccade = t + self.rng.uniform(*s.saccade_every_s)
        target = np.array(self._target if self._target is not None else (0.0, 0.0)) + self._saccade
        target = np.clip(target, -1, 1)
        self._gaze = np.array([_approach(g, tg, dt, s.gaze_tau_s) for g, tg in zip(self._gaze, target)])
        turn_target = self._target[0] if self._target is not None else 0.0
        self._head_turn = _approach(self._head_turn, turn_target, dt, s.head_tau_s)
        self._listen = _approach(self._listen, 1.0 if self._listening else 0.0, dt, s.pose_tau_s)
        self._lively = _approach(self._lively, s.speaking_motion if speaking else 1.0, dt, s.pose_tau_s)
        ph, f = self._phases, self._freqs
        tau = 2 * math.pi
        sway_x = 0.6 * math.sin(tau * f[0] * t + ph[0]) + 0.4 * math.sin(tau * f[1] * 2.3 * t + ph[1])
        sway_y = math.sin(tau * f[2] * t + ph[2])
        breath = math.sin(tau * t / s.breath_period_s + ph[3])
        roll = math.sin(tau * f[1] * t + ph[4])
        head = HeadPose(
            dx=s.sway * self._lively * sway_x + s.head_follow * self._head_turn,
            dy=0.5 * s.sway * self._lively * sway_y - 0.01 * breath + 0.02 * self._listen,
            roll_deg=s.sway_roll_deg * self._lively * roll + s.listen_roll_deg * self._listen
            - 1.5 * self._head_turn,
            scale=1.0 + s.breath_scale * breath + s.listen_lean * self._listen,
        )
        return IdleState(blink=self._blink(t), gaze=(float(self._gaze[0]), float(self._gaze[1])), head=head)


def gaze_from_faces(faces, mirrored: bool = False, track_id: int = -1) -> tuple[float, float] | None:
    """On-screen gaze direction toward the face ``track_id`` of a ``vision.Faces`` (the one who speaks,
    or whom the reply is for), else the first (engaged-first) face.

    The camera looks out of the screen like the avatar does, so a visitor on the camera image's
    left stands on the avatar's left, which on screen is to the right: x is flipped unless the
    camera image is already mirrored. The camera sits near the screen's top, so y is damped.
    """
    if not faces.faces or faces.width <= 0 or faces.height <= 0:
        return None
    face = next((f for f in faces.faces if f.track_id == track_id), faces.faces[0]) if track_id >= 0 else faces.faces[0]
    x, y, w, h = face.box
    nx = (x + w / 2) / faces.width * 2 - 1
    ny = (y + h / 2) / faces.height * 2 - 1
    return (float(np.clip(nx if mirrored else -nx, -1, 1)), float(np.clip(0.5 * ny, -1, 1)))
