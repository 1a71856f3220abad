"""How ``services/renderer/assets/portraits/grid_bbaf2n_smile.png`` was made (kept for the record).

GRID speaker ``bbaf2n``, frame 0 (CC BY 4.0, see that folder's PROVENANCE.md), with the mouth
spread and opened into a smile showing teeth by this renderer (built-in mouth interior), written
at the portrait's own size. Run from the repository root with the GRID clip's first frame saved
as PNG: ``python scripts/renderer_smile_portrait.py FRAME.png OUT.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, for its packages

import cv2  # noqa: E402

from assistant.face.mouth_shapes import NEUTRAL_MOUTH, articulate  # noqa: E402
from services.renderer.avatar import Avatar  # noqa: E402
from assistant.config.schema import RendererSettings  # noqa: E402
from services.renderer.synth import FaceSynth  # noqa: E402


def main() -> None:
    a = Avatar.build(sys.argv[1], None)
    h, w = a.image.shape[:2]
    s = FaceSynth(a, RendererSettings(width=w, height=h, zoom=1.0, still_room=False))
    off = articulate(0.14, 0.18, 0.0) - NEUTRAL_MOUTH
    off[[0, 12], 1] -= 0.08  # corners up: a smile
    off[[6, 16], 1] -= 0.08
    off[[1, 5, 11, 7], 1] -= 0.03
    cv2.imwrite(sys.argv[2], s.render(off))


if __name__ == "__main__":
    main()
