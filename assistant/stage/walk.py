"""Moving the simulated camera's visitor on cue: the walk file the camera twin re-reads.

The simulated camera (``camera.sim_walk_file``) reads a JSON list of keyframes
``[t_s, x_m, distance_m]`` whose times count from when the file was written, and reloads it
whenever it changes. Writing a new path is how a scripted scene makes the visitor walk in, stay,
and walk away when the script says so rather than at fixed times.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Enter from the left at 2.2 m, come up to the kiosk (0.8 m: engaged), and stay.
WALK_IN = [[0.0, -0.9, 2.2], [1.5, -0.3, 1.6], [3.0, 0.0, 0.8], [3600.0, 0.05, 0.8]]
#: From standing at the kiosk, step back and walk off to the right, out of view.
WALK_OUT = [[0.0, 0.05, 0.8], [1.2, 0.3, 1.6], [3.0, 1.6, 2.4]]
#: Nobody in view.
EMPTY: list[list[float]] = []


def write_walk(path: str | Path, keys: list[list[float]]) -> None:
    """Replace the walk file atomically (the camera never reads half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(keys))
    os.replace(tmp, path)
