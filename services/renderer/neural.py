"""The neural face: a generated mouth region (ONNX, no torch) composited into the rendered frame.

``NeuralSynth`` has the face-synthesis interface of :class:`FaceSynth` (``render``, ``landmarks``)
and wraps one: the classic synth draws the portrait with its eyes, blinks and head motion at
rest, and the generator paints the mouth region for the driven mouth landmarks. Per frame:

1. the face's landmarks in the output frame (with the head pose) place the canonical mouth crop;
2. the driven mouth points are drawn into that crop (``assistant.face.mouth_crop.draw_mouth``,
   the very function training used);
3. the generator turns (drawing, its previous output, the reference crop of this face) into the
   mouth crop;
4. the crop is colour-matched to the frame around the mouth (per-channel mean and spread in the
   feathered ring) and feather-blended back through the inverse affine, touching only the pixels
   under the blend mask's footprint; every other pixel of the frame stays exactly as it was.

Generator sessions run on onnxruntime's CUDA provider (the avatar's fp16 model when it has one)
when onnxruntime-gpu sees a GPU, else on the CPU provider, where avatars are built at 64-128 px.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from assistant import paths
from assistant.errors import SetupError
from assistant.face.lstm_driver import providers
from assistant.face.geometry import MOUTH, apply_affine
from assistant.face.mouth_crop import blend_mask, draw_mouth, image_to_crop, invert, warp_to_crop
from assistant.paths import package_file

from .synth import REST, FaceSynth, HeadPose

log = logging.getLogger(__name__)

AVATAR_VERSION = 1
"""Version of the avatar folder layout (``avatar.json`` ``version``)."""


class NeuralAvatarError(SetupError):
    """An avatar folder that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class CropGeometry:
    """The crop and blend settings a generator was trained with (from its ``avatar.json``)."""

    size: int
    centre: tuple[float, float]
    half: float
    mask_rx: float
    mask_ry: float
    mask_cy: float
    feather: float

    @classmethod
    def from_dict(cls, d: dict) -> "CropGeometry":
        try:
            return cls(int(d["size"]), (float(d["centre"][0]), float(d["centre"][1])), float(d["half"]),
                       float(d["mask_rx"]), float(d["mask_ry"]), float(d["mask_cy"]), float(d["feather"]))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise NeuralAvatarError(f"crop settings unreadable ({exc!r}): rebuild the avatar") from None

    def alpha(self) -> np.ndarray:
        return blend_mask(self.size, self.mask_rx, self.mask_ry, self.mask_cy, self.feather)


class MouthGenerator:
    """One ONNX generator session: uint8 BGR crops in, a uint8 BGR crop out."""

    def __init__(self, path: str | Path, prefer_gpu: bool = True, fp16: bool = True, threads: int = 1) -> None:
        import onnxruntime as ort

        path = Path(path)
        chosen = providers(prefer_gpu)
        self.device = "cuda" if chosen[0] == "CUDAExecutionProvider" else "cpu"
        half = path.with_name(path.stem + "_fp16" + path.suffix)
        if self.device == "cuda" and fp16 and half.is_file():
            path = half  # float16 arithmetic: the GPU's tensor cores, half the memory traffic
        self.path = path
        so = ort.SessionOptions()
        so.intra_op_num_threads = max(1, threads)
        so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), so, providers=chosen)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types
            raise NeuralAvatarError(f"generator {path} cannot be loaded ({exc}): rebuild the avatar") from None
        self.inputs = [i.name for i in self.session.get_inputs()]
        shape = self.session.get_inputs()[0].shape
        self.size = int(shape[-1]) if isinstance(shape[-1], int) else 0
        if "drawing" not in self.inputs or self.size <= 0:
            raise NeuralAvatarError(f"{path} is not a mouth generator (inputs {self.inputs})")
        self.temporal = "previous" in self.inputs
        log.info("mouth generator %s: %d px, %s, %s", path.name, self.size, "temporal" if self.temporal else "pix2pix",
                 self.session.get_providers()[0])

    @staticmethod
    def _to_input(img: np.ndarray) -> np.ndarray:
        return (img.astype(np.float32).transpose(2, 0, 1)[None] / 127.5 - 1.0).astype(np.float32)

    def __call__(self, drawing: np.ndarray, previous: np.ndarray | None, reference: np.ndarray) -> np.ndarray:
        feeds = {"drawing": self._to_input(drawing)}
        if "previous" in self.inputs:
            feeds["previous"] = self._to_input(previous if previous is not None else reference)
        if "reference" in self.inputs:
            feeds["reference"] = self._to_input(reference)
        y = self.session.run(None, feeds)[0][0]
        return np.clip((y.transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)


def colour_match(generated: np.ndarray, target: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``generated`` (uint8) with per-channel mean and spread moved to ``target``'s in the feathered ring.

    The ring (alpha between 0.05 and 0.7) is where the two images meet on screen: matching there
    hides the seam whatever light the frame was taken in. The spread ratio is bounded so a flat
    ring cannot blow up the contrast.
    """
    ring = ((alpha > 0.05) & (alpha < 0.7)).astype(np.uint8)
    if int(ring.sum()) < 16:
        return generated
    gm, gs = (v.reshape(-1) for v in cv2.meanStdDev(generated, mask=ring))
    tm, ts = (v.reshape(-1) for v in cv2.meanStdDev(target, mask=ring))
    gain = np.clip((ts + 1e-3) / (gs + 1e-3), 0.7, 1.4)
    lut = np.clip(np.arange(256)[:, None] * gain + (tm - gm * gain), 0, 255).round().astype(np.uint8)  # (256, 3)
    out = np.empty_like(generated)
    for c in range(3):  # a per-channel lookup table: cheap at any crop size
        out[..., c] = cv2.LUT(generated[..., c], lut[:, c])
    return out


def composite(frame: np.ndarray, mouth: np.ndarray, to_crop: np.ndarray, alpha: np.ndarray,
              match_colour: bool = True) -> tuple[slice, slice] | None:
    """Blend the crop-space ``mouth`` into ``frame`` in place; return the region written (or None).

    ``to_crop`` maps frame pixels to crop pixels. Only pixels inside the bounding box of the blend
    mask's footprint are read and written, and among those only where the warped alpha is above
    zero does anything change.
    """
    size = alpha.shape[0]
    from_crop = invert(to_crop)
    ys, xs = np.nonzero(alpha > 0)
    if len(xs) == 0:
        return None
    corners = np.array([[xs.min(), ys.min()], [xs.max() + 1, ys.min()], [xs.min(), ys.max() + 1], [xs.max() + 1, ys.max() + 1]], float)
    box = apply_affine(from_crop, corners)
    h, w = frame.shape[:2]
    x0, y0 = np.maximum(np.floor(box.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(box.max(0)).astype(int) + 2, (w, h))
    if x1 <= x0 or y1 <= y0:
        return None
    region = frame[y0:y1, x0:x1]
    m = from_crop.copy()
    m[:, 2] -= (x0, y0)
    if match_colour:
        target = cv2.warpAffine(region, _shift(to_crop, x0, y0), (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
        mouth = colour_match(mouth, target, alpha)
    rw, rh = x1 - x0, y1 - y0
    warped = cv2.warpAffine(mouth, m, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    a = cv2.warpAffine(alpha, m, (rw, rh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    mixed = cv2.blendLinear(warped, region, a, 1.0 - a)
    # Only where the warped alpha is above zero: every other pixel keeps its exact value.
    np.copyto(region, mixed, where=(a > 0)[..., None])
    return slice(y0, y1), slice(x0, x1)


def _shift(to_crop: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """``to_crop`` for a sub-image whose origin is frame pixel (x0, y0)."""
    m = np.array(to_crop, np.float64).copy()
    m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
    return m


@dataclass(frozen=True)
class NeuralAvatar:
    """An avatar folder written by ``assistant avatar build``."""

    folder: Path
    name: str
    crop: CropGeometry
    generator: Path
    portrait: Path | None
    """Full-resolution still of the person (the renderer's portrait), when the folder has one."""
    lipsync: Path | None
    """This person's fine-tuned audio -> landmarks model, when the build made one."""
    meta: dict
    base_loop: Path | None = None
    """The person's own looping base video (``base_loop.npz``), when the build made one."""

    @classmethod
    def load(cls, name_or_path: str | Path, search: list[Path]) -> "NeuralAvatar":
        """Find an avatar by folder path or by name in the ``search`` folders (first match wins)."""
        cand = Path(name_or_path)
        folders = [cand] if cand.is_dir() else [Path(s) / str(name_or_path) for s in search]
        folder = next((f for f in folders if (f / "avatar.json").is_file()), None)
        if folder is None:
            where = ", ".join(str(f) for f in folders) or "(no search folders)"
            raise NeuralAvatarError(f"avatar {name_or_path!r} not found (looked in {where}): build it with"
                                    f" 'assistant avatar build VIDEO --name {name_or_path}'")
        try:
            meta = json.loads((folder / "avatar.json").read_text())
        except (OSError, ValueError) as exc:
            raise NeuralAvatarError(f"{folder}/avatar.json unreadable ({exc}): rebuild the avatar") from None
        if meta.get("version") != AVATAR_VERSION:
            raise NeuralAvatarError(f"{folder} has avatar format {meta.get('version')}, this renderer reads"
                                    f" {AVATAR_VERSION}: rebuild the avatar")
        gen = folder / meta.get("generator", "generator.onnx")
        if not gen.is_file():
            raise NeuralAvatarError(f"{gen} is missing: the build did not finish; run it again to resume")
        base = folder / meta["base_loop"] if meta.get("base_loop") else None
        if base is not None and not base.is_file():
            raise NeuralAvatarError(f"{base} is missing: the build did not finish; run it again to resume")
        portrait = folder / meta["portrait"] if meta.get("portrait") else None
        lipsync = folder / meta["lipsync"] if meta.get("lipsync") else None
        return cls(folder, str(meta.get("name", folder.name)), CropGeometry.from_dict(meta.get("crop", {})), gen,
                   portrait if portrait and portrait.is_file() else None,
                   lipsync if lipsync and lipsync.is_file() else None, meta, base)


class NeuralSynth:
    """:class:`FaceSynth`'s interface with the mouth region painted by a generator."""

    def __init__(self, base: FaceSynth, generator: MouthGenerator, crop: CropGeometry, match_colour: bool = True) -> None:
        if generator.size != crop.size:
            raise NeuralAvatarError(f"generator is {generator.size} px but the avatar's crop is {crop.size} px: rebuild it")
        self.base, self.generator, self.crop = base, generator, crop
        self.settings = base.settings
        self.alpha = crop.alpha()
        self.match_colour = match_colour
        rest = base.render(None)
        m = self._to_crop(REST)
        # The face's own mouth region at rest: the generator copies its texture and colour.
        self.reference = warp_to_crop(rest, m, crop.size)
        self._previous: np.ndarray | None = None

    def _to_crop(self, head: HeadPose) -> np.ndarray:
        # Eyes open: a blink moves the eye points, and the crop must not jump with it.
        lm = self.base.landmarks(None, 0.0, head)
        return image_to_crop(lm, self.crop.centre, self.crop.half, self.crop.size)

    def reset(self) -> None:
        """Forget the previous frame (the next one starts from the reference again)."""
        self._previous = None

    def mouth_crop(self, mouth_offset: np.ndarray | None, head: HeadPose = REST) -> tuple[np.ndarray, np.ndarray]:
        """(generated crop, frame -> crop affine) for one mouth."""
        # One landmark pass: the crop is placed by the eyes, which the mouth does not move.
        lm = self.base.landmarks(mouth_offset, 0.0, head)
        m = image_to_crop(lm, self.crop.centre, self.crop.half, self.crop.size)
        drawing = draw_mouth(apply_affine(m, lm[MOUTH]), self.crop.size)
        out = self.generator(drawing, self._previous, self.reference)
        self._previous = out
        return out, m

    def render(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0,
               gaze: tuple[float, float] = (0.0, 0.0), head: HeadPose = REST) -> np.ndarray:
        """One BGR frame, as :meth:`FaceSynth.render`, with the generated mouth."""
        frame = self.base.render(None, blink, gaze, head)
        mouth, m = self.mouth_crop(mouth_offset, head)
        composite(frame, mouth, m, self.alpha, self.match_colour)
        return frame

    def landmarks(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0, head: HeadPose = REST) -> np.ndarray:
        return self.base.landmarks(mouth_offset, blink, head)


class BaseLoop:
    """An avatar's base video (``base_loop.npz``, written by ``models.neural.baseloop``): frames
    of the person that loop seamlessly, each with its image -> crop affine and its 68 landmarks."""

    MAX_DECODED_BYTES = 768 << 20
    """Frames are decoded once at load when they fit in this; larger loops (1080p) decode per frame."""

    def __init__(self, path: str | Path) -> None:
        try:
            z = np.load(path)
            self.jpeg, self.offsets = z["jpeg"], z["offsets"].astype(np.int64)
            self.to_crop = z["to_crop"].astype(np.float64)
            self.landmarks = z["landmarks"].astype(np.float32)
            self.rest_mouth = z["rest_mouth"].astype(np.float64)
            self.reference = np.ascontiguousarray(z["reference"])
            self.fps = float(z["fps"])
            w, h = (int(v) for v in z["size"])
        except (OSError, KeyError, ValueError) as exc:
            raise NeuralAvatarError(f"base video {path} unreadable ({exc}): rebuild the avatar") from None
        n = len(self.offsets) - 1
        if n < 2 or len(self.to_crop) != n or len(self.landmarks) != n:
            raise NeuralAvatarError(f"base video {path} is inconsistent: rebuild the avatar")
        self.size = (w, h)
        self._decoded: list[np.ndarray] | None = None
        if n * w * h * 3 <= self.MAX_DECODED_BYTES:
            self._decoded = [self._decode(k) for k in range(n)]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def _decode(self, k: int) -> np.ndarray:
        img = cv2.imdecode(self.jpeg[self.offsets[k]:self.offsets[k + 1]], cv2.IMREAD_COLOR)
        if img is None:
            raise NeuralAvatarError(f"base video frame {k} cannot be decoded: rebuild the avatar")
        return img

    def frame(self, k: int) -> np.ndarray:
        """Frame ``k`` (modulo the loop), a new array."""
        k %= len(self)
        return self._decoded[k].copy() if self._decoded is not None else self._decode(k)


class LoopSynth:
    """:class:`FaceSynth`'s interface over the avatar's base video: each frame is the next frame of
    the loop (the person's own head motion and blinks) with the generated mouth inserted under
    the blend mask. ``blink``, ``gaze`` and ``head`` are ignored: the video has its own.

    The mouth is composited at the video's resolution; when the output size differs, the frame
    is then scaled to fit it (letterboxed).
    """

    def __init__(self, loop: BaseLoop, generator: MouthGenerator, crop: CropGeometry, match_colour: bool = True,
                 out_size: tuple[int, int] | None = None, clock=None) -> None:
        """``clock``: a function giving seconds (``time.monotonic``): the loop frame shown is the
        one for that time at the video's own frame rate, whatever the renderer's rate (and a
        frame drawn twice, as on a barge-in, does not skip one). None: the next frame per call."""
        if generator.size != crop.size:
            raise NeuralAvatarError(f"generator is {generator.size} px but the avatar's crop is {crop.size} px: rebuild it")
        self.loop, self.generator, self.crop = loop, generator, crop
        self.alpha = crop.alpha()
        self.match_colour = match_colour
        self.reference = loop.reference
        if self.reference.shape[:2] != (crop.size, crop.size):
            raise NeuralAvatarError("the base video's reference crop does not match the generator: rebuild the avatar")
        from assistant.face.mouth_crop import canonical_to_crop

        self.canon_to_crop = canonical_to_crop(crop.centre, crop.half, crop.size)
        w, h = loop.size
        ow, oh = out_size or (w, h)
        self.out_size = (ow, oh)
        self.scale = min(ow / w, oh / h)
        sw, sh = max(1, round(w * self.scale)), max(1, round(h * self.scale))
        self._place = (sw, sh, (ow - sw) // 2, (oh - sh) // 2)
        self.settings = None
        self.clock = clock
        self._t0 = clock() if clock is not None else 0.0
        self._k = 0
        self._shown = 0
        self._previous: np.ndarray | None = None

    def reset(self) -> None:
        self._previous = None

    def mouth_points(self, mouth_offset: np.ndarray | None) -> np.ndarray:
        """(20, 2) crop pixels of the driven mouth: the person's rest mouth plus the driver's offset."""
        mouth = self.loop.rest_mouth if mouth_offset is None else self.loop.rest_mouth + np.asarray(mouth_offset, np.float64).reshape(20, 2)
        return apply_affine(self.canon_to_crop, mouth)

    def render_native(self, mouth_offset: np.ndarray | None = None) -> np.ndarray:
        """The next loop frame with the generated mouth, at the video's resolution."""
        if self.clock is not None:
            k = int((self.clock() - self._t0) * self.loop.fps) % len(self.loop)
        else:
            k = self._k
            self._k = (k + 1) % len(self.loop)
        self._shown = k
        frame = self.loop.frame(k)
        drawing = draw_mouth(self.mouth_points(mouth_offset), self.crop.size)
        out = self.generator(drawing, self._previous, self.reference)
        self._previous = out
        composite(frame, out, self.loop.to_crop[k], self.alpha, self.match_colour)
        return frame

    def render(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0,
               gaze: tuple[float, float] = (0.0, 0.0), head: HeadPose = REST) -> np.ndarray:
        frame = self.render_native(mouth_offset)
        if self.scale == 1.0 and self.out_size == self.loop.size:
            return frame
        sw, sh, x0, y0 = self._place
        out = np.zeros((self.out_size[1], self.out_size[0], 3), np.uint8)
        out[y0:y0 + sh, x0:x0 + sw] = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_LINEAR)
        return out

    def landmarks(self, mouth_offset: np.ndarray | None = None, blink: float = 0.0, head: HeadPose = REST) -> np.ndarray:
        """(68, 2) landmarks of the frame last rendered (output pixels), with the driven mouth."""
        k = self._shown
        lm = self.loop.landmarks[k].astype(np.float64).copy()
        lm[MOUTH] = apply_affine(invert(self.loop.to_crop[k]), self.mouth_points(mouth_offset))
        sw, sh, x0, y0 = self._place
        return (lm * self.scale + (x0, y0)).astype(np.float32)


SHIPPED_AVATARS = package_file("models.neural", "avatars")
"""Avatars that come with the code (small CPU builds with their model cards): package data of
``models.neural``, found by name (the package's code, torch training, is never imported here)."""


def search_path(avatars_dir_setting: str = "") -> list[Path]:
    """Built avatars (:func:`assistant.paths.avatars_dir`), then the shipped ones."""
    return [paths.avatars_dir(avatars_dir_setting), SHIPPED_AVATARS]
