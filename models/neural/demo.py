"""Show a trained mouth generator at work, as the seeds do: the generated mouth inserted into a
silent base video (MuseTalk's ``sun.mp4`` / ``yongen.mp4``) and into a still portrait.

``python -m models.neural.demo AVATAR_FOLDER --drive CLIP.npz --out build/neural/demo`` writes an
MP4 per target (``--video``) and a JPEG strip of frames (original | with the generated mouth) into
the avatar folder. The mouth motion is a real speaker's: the canonical mouth offsets of a
held-out GRID clip from its own rest shape, added to the target face's mouth (the renderer's
drivers hand over the same kind of offsets).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
import numpy as np

from assistant.face.geometry import MOUTH, apply_affine, invert_affine, similarity_to_canonical, to_canonical
from assistant.face.mouth_crop import draw_mouth, image_to_crop, smooth_eye_tracks, warp_to_crop
from models.lipsync.dataset import rest_mouth
from services.renderer.neural import MouthGenerator, NeuralAvatar, composite

from .dataset import FaceClip, read_frames

log = logging.getLogger(__name__)


def driving_offsets(clip: FaceClip) -> np.ndarray:
    """(T, 20, 2) canonical mouth offsets of a real speaker from their rest mouth."""
    mouths = np.stack([to_canonical(f)[MOUTH] for f in clip.landmarks.astype(np.float64)])
    return mouths - rest_mouth(mouths)


def insert_into_frames(frames: list[np.ndarray], gen: MouthGenerator, crop, offsets: np.ndarray) -> list[np.ndarray]:
    """The generated mouth, driven by ``offsets``, composited into each frame (face found by dlib)."""
    from services.renderer.avatar import detect_landmarks

    lms = []
    for f in frames:
        found = detect_landmarks(f)
        if found is None:
            raise ValueError("no face in a base-video frame")
        lms.append(found[0])
    lms = smooth_eye_tracks(np.stack(lms))
    reference = None
    prev = None
    out = []
    for k, (f, lm) in enumerate(zip(frames, lms)):
        m = image_to_crop(lm, crop.centre, crop.half, crop.size)
        if reference is None:
            reference = warp_to_crop(f, m, crop.size)  # this face's own mouth region at the start
        can = similarity_to_canonical(lm)
        mouth = apply_affine(can, lm[MOUTH]) + offsets[k % len(offsets)]
        mouth_px = apply_affine(m, apply_affine(invert_affine(can), mouth))
        g = gen(draw_mouth(mouth_px, crop.size), prev, reference)
        prev = g
        frame = f.copy()
        composite(frame, g, m, crop.alpha())
        out.append(frame)
    return out


def strip(originals: list[np.ndarray], generated: list[np.ndarray], picks: list[int], height: int = 220) -> np.ndarray:
    """Crops around the mouth: originals on top, generated below."""
    rows = []
    for frames in (originals, generated):
        tiles = []
        for i in picks:
            f = frames[i]
            tiles.append(cv2.resize(f, (int(f.shape[1] * height / f.shape[0]), height), interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def face_zoom(frames: list[np.ndarray], box: tuple[int, int, int, int]) -> list[np.ndarray]:
    x0, y0, x1, y1 = box
    return [f[y0:y1, x0:x1] for f in frames]


def write_mp4(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=int(fps))
        s.width, s.height, s.pix_fmt = frames[0].shape[1] // 2 * 2, frames[0].shape[0] // 2 * 2, "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[: s.height, : s.width]), format="bgr24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def run(avatar_folder: Path, drive: Path, videos: list[Path], out: Path, frames: int = 60) -> list[Path]:
    from services.renderer.avatar import Avatar, detect_landmarks
    from services.renderer.neural import NeuralSynth
    from assistant.config.schema import RendererSettings
    from services.renderer.synth import FaceSynth

    a = NeuralAvatar.load(avatar_folder, [])
    gen = MouthGenerator(a.generator, prefer_gpu=False)
    offsets = driving_offsets(FaceClip.load(drive))
    written = []
    for v in videos:
        base = read_frames(v, frames)
        made = insert_into_frames(base, gen, a.crop, offsets)
        write_mp4(out / f"{v.stem}_neural.mp4", made)
        lm = detect_landmarks(base[0])[0]
        iod = np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0)))
        c = lm[48:68].mean(0)
        box = (int(max(c[0] - 1.3 * iod, 0)), int(max(c[1] - 1.5 * iod, 0)), int(c[0] + 1.3 * iod), int(c[1] + 1.0 * iod))
        picks = list(np.linspace(0, len(base) - 1, 6).round().astype(int))
        img = strip(face_zoom(base, box), face_zoom(made, box), picks)
        path = avatar_folder / f"demo_{v.stem}.jpg"
        cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 88])
        written.append(path)
        log.info("%s: %d frames -> %s", v.name, len(made), path)
    # A still portrait (the renderer's shipped default, a GRID speaker), driven the same way.
    synth = NeuralSynth(FaceSynth(Avatar.build(None, None), RendererSettings(width=640, height=480, zoom=2.0)), gen, a.crop)
    # Offsets from rest are what the renderer's timeline hands a synth. Top row: the classic
    # warped mouth with the same offsets; bottom: the generated one.
    made = [synth.render(o) for o in offsets[:frames]]
    base = [synth.base.render(o) for o in offsets[:frames]]
    write_mp4(out / "portrait_neural.mp4", made)
    lm = synth.base.landmarks()
    iod = np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0)))
    c = lm[48:68].mean(0)
    box = (int(max(c[0] - 1.3 * iod, 0)), int(max(c[1] - 1.5 * iod, 0)), int(c[0] + 1.3 * iod), int(c[1] + 1.0 * iod))
    picks = list(np.linspace(0, len(made) - 1, 6).round().astype(int))
    path = avatar_folder / "demo_portrait.jpg"
    cv2.imwrite(str(path), strip(face_zoom(base, box), face_zoom(made, box), picks), [cv2.IMWRITE_JPEG_QUALITY, 88])
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("avatar", type=Path, help="avatar folder")
    ap.add_argument("--drive", type=Path, required=True, help="FaceClip .npz whose real mouth motion drives the demo")
    ap.add_argument("--video", type=Path, action="append", default=[], help="silent base video (repeatable)")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--out", type=Path, default=Path("build/neural/demo"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for p in run(args.avatar, args.drive, args.video, args.out, args.frames):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
