"""Re-measuring what the renderer drew: dlib's 68 points and face descriptor on rendered frames.

Used by ``bench/renderer.py`` and the renderer's quality tests (never by the service). A portrait
is driven by speech (phoneme timings through the viseme driver, so every frame has a known
commanded mouth), rendered with idle head motion, and each frame is measured as a stranger's
photo would be: dlib finds the face and fits its 68 points; the 128-d descriptor says whether it
is still the same person. The numbers:

- ``commanded_vs_drawn_corr``: Pearson r of the commanded inner-lip opening (beyond the driver's
  neutral) and the opening dlib measures, both in inter-ocular units.
- ``lip_closure_gap_iod_p95``: 95th percentile of the measured inner-lip gap over the frames
  commanded closed (p, b, m and silence): the lips must meet.
- ``round_spread_width_ratio``: measured mouth width on the most rounded ("oo") frames over that
  on the most spread ("ee") frames.
- ``identity_distance_max``: the largest descriptor distance between the portrait and a frame.
- ``background_change_mean``: mean absolute grey-level change between consecutive frames over
  the pixels outside the person mask (dilated by how far the head can travel).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from assistant.face.geometry import mouth_opening, to_canonical
from assistant.face.mouth_shapes import NEUTRAL_MOUTH, articulate
from assistant.face.visemes import VisemeDriver, viseme_parameters
from assistant.messages import Phoneme

from assistant.config.schema import RendererSettings
from services.renderer.avatar import Avatar, predictor_path, refine_inner_lips
from services.renderer.idle import IdleLife
from services.renderer.synth import FaceSynth, HeadPose

FPS = 25.0
# A fallback "utterance" when no aligned speech is at hand: open, rounded, spread and closed
# sounds in turn, at speaking rate ("mama, we see you; pop two fees; how about a boot").
SCRIPT = [("SIL", 0.2), ("M", 0.08), ("AA", 0.16), ("M", 0.08), ("AA", 0.18), ("SIL", 0.1), ("W", 0.08),
          ("IY", 0.16), ("S", 0.1), ("IY", 0.14), ("Y", 0.06), ("UW", 0.2), ("SIL", 0.1), ("P", 0.08),
          ("AA", 0.16), ("P", 0.08), ("T", 0.06), ("UW", 0.18), ("F", 0.1), ("IY", 0.16), ("Z", 0.08),
          ("SIL", 0.1), ("HH", 0.06), ("AW", 0.2), ("AH", 0.08), ("B", 0.08), ("AW", 0.18), ("T", 0.06),
          ("AH", 0.06), ("B", 0.08), ("UW", 0.2), ("T", 0.06), ("SIL", 0.25)]


def script_phonemes() -> list[Phoneme]:
    out, t = [], 0.0
    for label, d in SCRIPT:
        out.append(Phoneme(label, t, d))
        t += d
    return out


def aligned_phonemes(path: Path) -> list[Phoneme]:
    """Phones of a ``*.phone.json`` alignment (LibriVox, see ../shared/data/README.md)."""
    data = json.loads(Path(path).read_text())
    return [Phoneme(p["t"], float(p["b"]), float(p["d"])) for w in data["w"] for p in w["w"]]


class FrameMeasure:
    """dlib on rendered pixels: 68 points (the face box re-found every ``redetect`` frames)."""

    def __init__(self, redetect: int = 4):
        import dlib

        self.dlib = dlib
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(predictor_path()))
        self.encoder = dlib.face_recognition_model_v1(
            str(predictor_path().parent / "dlib_face_recognition_resnet_model_v1.dat"))
        self.redetect = redetect
        self._box = None
        self._n = 0

    def reset(self) -> None:
        """Forget the face box (a new portrait or a new clip)."""
        self._box, self._n = None, 0

    def landmarks(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, object]:
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
        if self._box is None or self._n % self.redetect == 0:
            # Found on a half-size copy (the face is big at 1080p), fitted at full size.
            f = 0.5 if max(rgb.shape[:2]) >= 1200 else 1.0
            small = np.ascontiguousarray(cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)) if f < 1 else rgb
            boxes = self.detector(small, 0 if max(small.shape[:2]) >= 600 else 1)
            if not boxes:
                raise ValueError("dlib finds no face in the rendered frame")
            b = max(boxes, key=lambda b: b.area())
            self._box = self.dlib.rectangle(int(b.left() / f), int(b.top() / f), int(b.right() / f), int(b.bottom() / f))
        self._n += 1
        shape = self.predictor(rgb, self._box)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64), shape

    def descriptor(self, frame_bgr: np.ndarray, shape=None) -> np.ndarray:
        rgb = np.ascontiguousarray(frame_bgr[:, :, ::-1])
        if shape is None:
            boxes = self.detector(rgb, 1)
            if not boxes:
                raise ValueError("dlib finds no face in the image")
            shape = self.predictor(rgb, max(boxes, key=lambda b: b.area()))
        return np.array(self.encoder.compute_face_descriptor(rgb, shape))


@dataclass
class PortraitResult:
    name: str
    commanded: np.ndarray
    measured: np.ndarray
    closed_gaps: np.ndarray
    oo_width: float
    ee_width: float
    identity: np.ndarray
    background: np.ndarray
    head_travel_px: float
    refined: np.ndarray
    """The measured opening with dlib's inner lip corrected from the pixels where teeth show
    (``avatar.refine_inner_lips``): dlib alone reads a tooth edge as the lip on such mouths."""
    closed: np.ndarray

    @property
    def corr(self) -> float:
        return float(np.corrcoef(self.commanded, self.measured)[0, 1])

    def summary(self) -> dict:
        return {"portrait": self.name, "commanded_vs_drawn_corr": round(self.corr, 3),
                "lip_closure_gap_iod_p95": round(float(np.percentile(self.closed_gaps, 95)), 4),
                "round_spread_width_ratio": round(self.oo_width / self.ee_width, 3),
                "identity_distance_max": round(float(self.identity.max()), 3),
                "background_change_mean": round(float(self.background.mean()), 3),
                "head_travel_px": round(self.head_travel_px, 1), "frames": len(self.measured),
                "refined_corr": round(float(np.corrcoef(self.commanded, self.refined)[0, 1]), 3),
                "refined_closure_gap_iod_p95": round(float(np.percentile(self.refined[self.closed], 95)), 4)
                if self.closed.any() else float("nan")}


def measure_portrait(avatar: Avatar, phonemes: list[Phoneme], name: str = "", width: int = 1920,
                     height: int = 1080, identity_every: int = 4, measure: FrameMeasure | None = None,
                     seed: int = 0) -> PortraitResult:
    """Drive ``avatar`` with ``phonemes`` (viseme driver, 25 fps), render with idle head motion
    (livelier than idle, and a slow extra sway so the head surely moves), and re-measure."""
    measure = measure or FrameMeasure()
    measure.reset()
    synth = FaceSynth(avatar, RendererSettings(width=width, height=height))
    duration = max(p.start_s + p.dur_s for p in phonemes) + 0.2
    n = int(np.ceil(duration * FPS))
    mouths = VisemeDriver().drive(np.zeros(int(duration * 16000), np.int16), 16000, FPS, phonemes, "arpabet")[:n]
    params = viseme_parameters(phonemes, "arpabet", len(mouths), FPS)
    offsets = mouths - NEUTRAL_MOUTH
    commanded = mouth_opening(mouths) - float(mouth_opening(NEUTRAL_MOUTH))
    life = IdleLife(seed=seed)
    portrait_desc = measure.descriptor(avatar.image)
    grow = int(0.35 * synth.eye_distance) * 2 + 1
    outside = cv2.dilate(_person_mask(synth), np.ones((grow, grow), np.uint8)) == 0
    measured, refined, widths, ident, bg = [], [], [], [], []
    prev = None
    corners = []
    for k, off in enumerate(offsets):
        state = life.step(k / FPS, speaking=True)
        h = state.head
        head = HeadPose(dx=h.dx + 0.04 * np.sin(k / 11), dy=h.dy, roll_deg=h.roll_deg + 1.0 * np.sin(k / 17),
                        scale=h.scale)
        frame = synth.render(off, 0.0, state.gaze, head)
        corners.append(synth.landmarks(off, 0.0, head)[27])
        lm, shape = measure.landmarks(frame)
        c = to_canonical(lm)
        measured.append(float(np.hypot(*(c[66] - c[62]))))
        c = to_canonical(refine_inner_lips(frame, lm, margin=False))
        refined.append(float(np.hypot(*(c[66] - c[62]))))
        widths.append(float(np.hypot(*(c[54] - c[48]))))
        if k % identity_every == 0 or commanded[k] >= np.percentile(commanded, 95):
            ident.append(float(np.linalg.norm(measure.descriptor(frame, shape) - portrait_desc)))
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.int16)
        if prev is not None:
            bg.append(float(np.abs(grey - prev)[outside].mean()))
        prev = grey
    measured_a, widths_a = np.array(measured), np.array(widths)
    closed = commanded <= 0.005
    rounding, spread = params[:, 2], np.where(params[:, 2] < 0.05, params[:, 1], -1.0)
    oo = rounding >= max(0.5 * rounding.max(), 0.2)
    ee = spread >= max(0.6 * spread.max(), 0.05)
    travel = np.array(corners)
    return PortraitResult(
        name=name, commanded=commanded, measured=measured_a,
        closed_gaps=measured_a[closed] if closed.any() else np.array([np.nan]),
        oo_width=float(widths_a[oo].mean()) if oo.any() else float("nan"),
        ee_width=float(widths_a[ee].mean()) if ee.any() else float("nan"),
        identity=np.array(ident), background=np.array(bg),
        head_travel_px=float(np.ptp(travel[:, 0]) + np.ptp(travel[:, 1])),
        refined=np.array(refined), closed=closed)


def _person_mask(synth: FaceSynth) -> np.ndarray:
    """uint8 mask of the person (head and body) in the output frame at rest."""
    lay, av = synth.layout, synth.avatar
    h, w = synth.base.shape[:2]
    out = np.zeros((h, w), np.uint8)
    cx, cy, cw, ch = lay.crop
    pw = lay.region[1].stop - lay.region[1].start
    matte = av.matte if av.matte is not None else np.full(av.image.shape[:2], 255, np.uint8)
    out[lay.region] = (cv2.resize(matte[cy:cy + ch, cx:cx + cw], (pw, h), interpolation=cv2.INTER_LINEAR) > 0) * 255
    return out


def mouth_shapes() -> dict[str, np.ndarray | None]:
    """The contact sheet's seven mouths as canonical offsets from the driver's neutral."""
    from assistant.face.visemes import VISEMES

    shapes = {"rest": None, "aa": VISEMES["aa"][:3], "ee": VISEMES["iy"][:3], "oo": VISEMES["uw"][:3],
              "m": VISEMES["PP"][:3], "f": VISEMES["FF"][:3], "wide open": (0.35, 0.0, 0.0)}
    return {k: None if v is None else articulate(*v) - NEUTRAL_MOUTH for k, v in shapes.items()}


