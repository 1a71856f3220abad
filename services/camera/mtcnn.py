"""MTCNN face detection through onnxruntime (no torch): a full-frame search and a local refine.

Why MTCNN and not the Haar cascade: on the simulated backlit kiosk with real GRID faces, Haar
found the darker-skinned speaker (``swiz3n``) only from ~1.3-1.6 m even with a well exposed face,
while the others were found at 2.2 m; dlib's HOG needs 80 px faces (2x upsampling costs ~200 ms a
frame) and still found him only at 1.4 m; dlib's CNN took seconds a frame. MTCNN found all six
speakers at 2.2 m, for ~20 ms a 640x480 frame on one core (see docs/camera.md).

Three networks (P-Net over an image pyramid proposes 12x12 windows, R-Net at 24x24 and O-Net at
48x48 reject and refine them). Boxes come back in the camera's face-box convention (square, the
size a Haar cascade gives, which the distance estimate is calibrated for): MTCNN's own boxes are
narrower (0.765 x the width) and sit 3.4 % of the width to the left, measured on 120 studio-to-sim
faces of 8 GRID speakers (sd 2.7 % and 1.8 %).
"""

from __future__ import annotations


import numpy as np

from assistant.paths import package_file

Box = tuple[float, float, float, float]

#: The ONNX networks: package data of ``models.mtcnn`` (found by name, not imported as code).
WEIGHTS = package_file("models.mtcnn", "weights")
#: MTCNN box width / face-box width, and MTCNN centre offset in face-box widths (measured).
WIDTH_RATIO = 0.765
CENTRE_DX = -0.034
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709


class MtcnnError(RuntimeError):
    pass


def _nms(b: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression of x0, y0, x1, y1 boxes."""
    order = np.argsort(-scores)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx0 = np.maximum(b[i, 0], b[order[1:], 0])
        yy0 = np.maximum(b[i, 1], b[order[1:], 1])
        xx1 = np.minimum(b[i, 2], b[order[1:], 2])
        yy1 = np.minimum(b[i, 3], b[order[1:], 3])
        inter = np.clip(xx1 - xx0, 0, None) * np.clip(yy1 - yy0, 0, None)
        iou = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][iou <= thr]
    return np.array(keep, dtype=int)


def _square(b: np.ndarray) -> np.ndarray:
    b = b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = np.maximum(w, h)
    b[:, 0] += (w - side) / 2
    b[:, 1] += (h - side) / 2
    b[:, 2] = b[:, 0] + side
    b[:, 3] = b[:, 1] + side
    return b


def _regress(b: np.ndarray, reg: np.ndarray) -> np.ndarray:
    b = b.copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    b[:, :4] += reg * np.stack([w, h, w, h], 1)
    return b


class MtcnnDetector:
    """Faces in BGR images, as face boxes (x, y, w, h) with the Haar cascade's size convention."""

    def __init__(self, min_face_px: int = 32) -> None:
        import cv2

        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - the cpu/gpu extra provides it
            raise MtcnnError("onnxruntime is not installed (extra: cpu)") from exc
        folder = WEIGHTS
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.cv2 = cv2
        self.sessions = {}
        for name in ("pnet", "rnet", "onet"):
            path = folder / f"{name}.onnx"
            if not path.is_file():
                raise MtcnnError(f"MTCNN weights missing: {path} (python -m models.mtcnn.export writes them)")
            self.sessions[name] = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.min_face_px = min_face_px
        # Veiling glare (a bright window, a smudged cover glass) lifts a backlit face's shadows and
        # leaves it a few grey levels of contrast: MTCNN, unlike a Haar cascade, does not
        # normalise each window's contrast, so local contrast is equalised first (luma only).
        self.clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
        self.clahe_roi = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(2, 2))

    # --- the camera's interface ---------------------------------------------------------------
    def search(self, image: np.ndarray) -> list[Box]:
        """All faces at least ``min_face_px`` wide (face-box convention) in a BGR frame."""
        rgb = self._rgb(image, self.clahe)
        h, w = rgb.shape[:2]
        return [self._to_face_box(b) for b in self.detect(rgb, self.min_face_px * WIDTH_RATIO, 0.6 * min(h, w))]

    def refine(self, image: np.ndarray, box: Box) -> Box | None:
        """The face near ``box`` (a search in a window twice its size, at 0.7-1.45 x its size), or None."""
        from .detection import refine_window

        x, y, w, h = box
        window = refine_window(box, image.shape)
        if window is None:
            return None
        x0, y0, x1, y1 = window
        roi = self._rgb(image[y0:y1, x0:x1], self.clahe_roi)
        found = self.detect(roi, 0.7 * w * WIDTH_RATIO, 1.45 * w * WIDTH_RATIO)
        if not found.size:
            return None
        faces = [self._to_face_box(b) for b in found]
        cx, cy = x + w / 2 - x0, y + h / 2 - y0
        fx, fy, fw, fh = min(faces, key=lambda f: (f[0] + f[2] / 2 - cx) ** 2 + (f[1] + f[3] / 2 - cy) ** 2)
        return (fx + x0, fy + y0, fw, fh)

    def _rgb(self, bgr: np.ndarray, clahe) -> np.ndarray:
        cv2 = self.cv2
        ycc = cv2.cvtColor(bgr, cv2.COLOR_BGR2YCrCb)
        ycc[..., 0] = clahe.apply(np.ascontiguousarray(ycc[..., 0]))
        return cv2.cvtColor(ycc, cv2.COLOR_YCrCb2RGB)

    @staticmethod
    def _to_face_box(b: np.ndarray) -> Box:
        side = float(b[2] - b[0]) / WIDTH_RATIO
        cx = float(b[0] + b[2]) / 2 - CENTRE_DX * side
        cy = float(b[1] + b[3]) / 2
        return (cx - side / 2, cy - side / 2, side, side)

    # --- the cascade --------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray, min_px: float, max_px: float) -> np.ndarray:
        """MTCNN boxes (x0, y0, x1, y1, score) of faces min_px..max_px wide in an RGB image."""
        cv2 = self.cv2
        h, w = rgb.shape[:2]
        min_px = max(min_px, 12.0)
        scale = 12.0 / min_px
        props = []
        level = rgb
        while min(h, w) * scale >= 12 and 12.0 / scale <= max(max_px, min_px):
            size = (int(w * scale + 1), int(h * scale + 1))
            level = cv2.resize(level, size, interpolation=cv2.INTER_AREA)
            prob, reg = self.sessions["pnet"].run(None, {"image": _blob(level)})
            ys, xs = np.nonzero(prob[0] > THRESHOLDS[0])
            if ys.size:
                b = np.stack([(2 * xs + 1) / scale, (2 * ys + 1) / scale, (2 * xs + 12) / scale, (2 * ys + 12) / scale,
                              prob[0, ys, xs]], 1)
                b = _regress(b, reg[0][:, ys, xs].T)[_nms(b[:, :4], b[:, 4], 0.5)]
                props.append(b)
            scale *= PYRAMID_FACTOR
        if not props:
            return np.zeros((0, 5))
        b = np.concatenate(props)
        b = _square(b[_nms(b[:, :4], b[:, 4], 0.7)])
        for stage, size in (("rnet", 24), ("onet", 48)):
            prob, reg = self.sessions[stage].run(None, {"image": self._crops(rgb, b, size)})
            keep = prob > THRESHOLDS[1 if stage == "rnet" else 2]
            if not keep.any():
                return np.zeros((0, 5))
            b, reg = b[keep], reg[keep]
            b[:, 4] = prob[keep]
            b = _regress(b, reg)
            b = b[_nms(b[:, :4], b[:, 4], 0.7)]
            if stage == "rnet":
                b = _square(b)
        return b

    def _crops(self, rgb: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
        cv2 = self.cv2
        H, W = rgb.shape[:2]
        out = np.zeros((len(boxes), size, size, 3), np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes[:, :4].astype(int)):
            if x1 <= x0 or y1 <= y0:
                continue
            sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(W, x1), min(H, y1)
            if sx1 <= sx0 or sy1 <= sy0:
                continue
            crop = rgb[sy0:sy1, sx0:sx1]
            if (sx0, sy0, sx1, sy1) != (x0, y0, x1, y1):  # partly outside the image: pad with black
                crop = cv2.copyMakeBorder(crop, sy0 - y0, y1 - sy1, sx0 - x0, x1 - sx1, cv2.BORDER_CONSTANT, value=0)
            out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
        return ((out.astype(np.float32) - 127.5) * (1 / 128.0)).transpose(0, 3, 1, 2)


def _blob(rgb: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 RGB -> 1x3xHxW float32 scaled like MTCNN's training data."""
    return ((rgb.astype(np.float32) - 127.5) * (1 / 128.0)).transpose(2, 0, 1)[None]
