"""Neural mouth renderer benchmark: generator frames/s and whole composited 1080p frames/s.

Run from the repository root: ``python bench/neural_renderer.py``. Progress goes to stderr; the
last stdout line is one JSON object:

- ``mouth_fps_256``: generator frames per second at 256x256 (the GPU build: temporal U-Net, 32
  base channels) on the device present (CUDA provider with the float16 model when onnxruntime
  sees a GPU, else the CPU provider with ONE thread, the renderer's budget on a 2-core kiosk);
- ``composite_fps_1080p``: whole frames as the screen gets them, 1920x1080: the portrait with
  blinks, gaze and head motion (``FaceSynth``, CPU), the 256 px mouth generated, colour-matched
  and feather-blended in (``NeuralSynth.render``);
- ``cpu_mouth_fps_128``: the same generator architecture at 128x128 on the CPU provider;
- extras: whole 1080p frames with a 128 px mouth on the CPU, the 64 px CPU build's rate (the shipped GRID avatar when present), the compositing cost
  alone, the load average while measuring (others share this machine: figures are noisy).

Weights are random where no trained model of that size exists: speed depends on the
architecture, not on the values.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# bench/email.py would shadow the standard library's email package (torch imports it): drop this folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.neural.config import CropConfig, NetConfig  # noqa: E402
from models.neural.export import export  # noqa: E402
from models.neural.networks import build_generator  # noqa: E402
from services.renderer.neural import (  # noqa: E402
    SHIPPED_AVATARS, CropGeometry, MouthGenerator, NeuralAvatar, NeuralSynth, composite,
)

# Seconds per measured rate; --smoke (the test suite's run): a few frames each, the same paths.
SECONDS = 0.2 if "--smoke" in sys.argv else float(os.environ.get("BENCH_SECONDS", "3"))


def say(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def rate(fn, seconds: float = SECONDS, warm: int = 2) -> float:
    for _ in range(warm):
        fn(0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 3:
        fn(n)
        n += 1
    return n / (time.perf_counter() - t0)


def generator_file(folder: Path, size: int, ngf: int = 32) -> Path:
    import torch

    torch.manual_seed(0)
    path = folder / f"g{size}.onnx"
    export(build_generator(NetConfig(mode="temporal", size=size, ngf=ngf)), CropConfig(size=size).to_dict(), path, fp16=True)
    return path


def mouth_rate(gen: MouthGenerator) -> float:
    rng = np.random.default_rng(0)
    s = gen.size
    d, r = rng.integers(0, 256, (s, s, 3), dtype=np.uint8), rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
    prev = [r]

    def step(_):
        prev[0] = gen(d, prev[0], r)

    return rate(step)


def main() -> int:
    import cv2
    import torch

    from services.renderer.avatar import Avatar
    from assistant.config.schema import RendererSettings
    from services.renderer.synth import FaceSynth, HeadPose

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        say("exporting 256 and 128 px generators ...")
        g256, g128 = generator_file(tmp, 256), generator_file(tmp, 128)
        gen = MouthGenerator(g256, prefer_gpu=True, fp16=True, threads=1)
        out["device"] = "cuda" if gen.device == "cuda" else "cpu"
        out["provider"] = gen.session.get_providers()[0]
        out["fp16"] = gen.path.name.endswith("_fp16.onnx")
        out["mouth_fps_256"] = round(mouth_rate(gen), 2)
        say(f"mouth 256 px on {out['provider']}: {out['mouth_fps_256']} frames/s")
        cpu128 = MouthGenerator(g128, prefer_gpu=False, threads=1)
        out["cpu_mouth_fps_128"] = round(mouth_rate(cpu128), 2)
        say(f"mouth 128 px on CPU (1 thread): {out['cpu_mouth_fps_128']} frames/s")
        shipped = SHIPPED_AVATARS / "grid"
        if (shipped / "avatar.json").is_file():
            a = NeuralAvatar.load(shipped, [])
            g64 = MouthGenerator(a.generator, prefer_gpu=False, threads=1)
            out["cpu_mouth_fps_64_grid_avatar"] = round(mouth_rate(g64), 2)
            say(f"mouth {g64.size} px (shipped GRID avatar) on CPU: {out['cpu_mouth_fps_64_grid_avatar']} frames/s")

        say("whole 1080p frames (portrait + 256 px neural mouth) ...")
        base = FaceSynth(Avatar.build(None, tmp / "cache"), RendererSettings(width=1920, height=1080))
        synth = NeuralSynth(base, gen, CropGeometry.from_dict(CropConfig(size=256).to_dict()))
        offsets = np.zeros((50, 20, 2))
        offsets[:, 8:11, 1] = offsets[:, 13:16, 1] = (0.12 * (1 + np.sin(np.arange(50) / 3)))[:, None] / 2

        def frame(i):
            synth.render(offsets[i % 50], blink=0.0, gaze=(0.1, 0.0), head=HeadPose(dx=0.02 * np.sin(i / 7), roll_deg=np.sin(i / 11)))

        out["composite_fps_1080p"] = round(rate(frame), 2)
        say(f"composited 1080p: {out['composite_fps_1080p']} frames/s")
        # The CPU kiosk's configuration: a 128 px generator in the same whole-frame pipeline.
        synth = NeuralSynth(base, cpu128, CropGeometry.from_dict(CropConfig(size=128).to_dict()))
        out["cpu_composite_fps_1080p_128"] = round(rate(frame), 2)
        say(f"composited 1080p with a 128 px mouth on CPU: {out['cpu_composite_fps_1080p_128']} frames/s")
        base_only = rate(lambda i: base.render(offsets[i % 50], 0.0, (0.1, 0.0), HeadPose(dx=0.02 * np.sin(i / 7), roll_deg=np.sin(i / 11))))
        out["classic_fps_1080p"] = round(base_only, 2)
        frame0 = base.render(None)
        mouth, m = synth.mouth_crop(offsets[10])
        work = frame0.copy()

        def comp(_):
            work[:] = frame0
            composite(work, mouth, m, synth.alpha)

        out["composite_only_ms_1080p"] = round(1000 / rate(comp), 2)
        say(f"colour match + blend alone: {out['composite_only_ms_1080p']} ms; classic face {base_only:.1f} frames/s")
    out["threads"] = 1
    out["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
