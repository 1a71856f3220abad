"""Contact sheet of the renderer: three portraits x seven mouth shapes, for docs/renderer.md.

Run from the repository root: ``python bench/renderer_sheet.py [OUT.jpg | --smoke]`` (``--smoke``:
the first row only, into a temporary file: the test suite's run). Rows: the shipped
portraits (lips together: the default; a smile showing teeth; lips apart); columns: rest, aa, ee,
oo, m, f, wide open (the viseme driver's shapes, ``bench.lib.renderer_quality.mouth_shapes``),
each rendered at 1920x1080 and cropped round the mouth and chin. The last stdout line is JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # bench/email.py must not shadow email

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from services.renderer.avatar import PORTRAITS, Avatar  # noqa: E402
from bench.lib.renderer_quality import mouth_shapes  # noqa: E402
from assistant.config.schema import RendererSettings  # noqa: E402
from services.renderer.synth import FaceSynth  # noqa: E402

ROWS = {"lips together (default)": "grid_lrwp9a.png", "smile with teeth": "grid_bbaf2n_smile.png",
        "lips apart": "grid_lbax4n.png"}
TILE = (200, 170)


def main() -> None:
    smoke = "--smoke" in sys.argv
    if smoke:
        import tempfile

        out = Path(tempfile.mkdtemp(prefix="renderer-sheet-")) / "sheet.jpg"
    else:
        out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/renderer_contact_sheet.jpg")
    shapes = mouth_shapes()
    header = np.full((28, TILE[0] * len(shapes), 3), 255, np.uint8)
    for i, name in enumerate(shapes):
        cv2.putText(header, name, (i * TILE[0] + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    rows = [header]
    for label, file in list(ROWS.items())[:1] if smoke else ROWS.items():
        synth = FaceSynth(Avatar.build(PORTRAITS / file, None), RendererSettings(width=1920, height=1080))
        lm, e = synth.landmarks_rest, synth.eye_distance
        c = lm[48:68].mean(axis=0)
        y0, y1 = int(c[1] - 0.75 * e), int(c[1] + 0.95 * e)
        x0, x1 = int(c[0] - 1.0 * e), int(c[0] + 1.0 * e)
        tiles = [cv2.resize(synth.render(off)[y0:y1, x0:x1], TILE, interpolation=cv2.INTER_AREA)
                 for off in shapes.values()]
        row = np.hstack(tiles)
        cv2.putText(row, label, (8, TILE[1] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 82])
    size = out.stat().st_size
    if smoke:
        out.unlink()
        out.parent.rmdir()
    print(json.dumps({"contact_sheet": str(out), "bytes": size}))


if __name__ == "__main__":
    main()
