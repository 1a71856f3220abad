"""The wheel ships every model: built from this tree, installed into a fresh venv, each model loads from it.

Model files are package data found with ``importlib.resources`` (``assistant.paths.package_file``), so
an install from the wheel (no source tree) finds them in site-packages. The test builds the wheel
(``pip wheel --no-deps --no-build-isolation`` from a copy of the tree, so nothing is written into the
checkout), installs it with ``--no-deps`` into a new venv whose only view of the third-party packages
(numpy, onnxruntime, OpenCV) is a path line to this interpreter's site-packages (no download, and
not the editable install's hook to the source tree), then runs a script from a folder outside the
repository that loads each model through the code's own lookups and checks every file came from
the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("assistant", "services", "hardware", "models")
#: Model files the runtime loads (relative to site-packages); each must be in the wheel and load.
MODELS = ("models/lipsync/weights/lipsync.onnx", "models/lipsync/weights/lipsync_stream.onnx",
          "models/mtcnn/weights/pnet.onnx", "models/mtcnn/weights/rnet.onnx", "models/mtcnn/weights/onet.onnx",
          "models/neural/avatars/grid/generator.onnx", "models/neural/avatars/grid/generator_fp16.onnx")

LOAD = r"""
import json, sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

import assistant, models
from assistant.face.lstm_driver import DEFAULT_MODEL, LstmDriver
from services.brain.service import SAMPLE_KNOWLEDGE
from services.camera.mtcnn import WEIGHTS, MtcnnDetector
from services.renderer.avatar import DEFAULT_PORTRAIT
from services.renderer.neural import SHIPPED_AVATARS, MouthGenerator, NeuralAvatar, search_path

site = Path(models.__file__).resolve().parents[1]
loaded = {}
for name in ("lipsync.onnx", "lipsync_stream.onnx"):  # the renderer's lip-sync network, both exports
    driver = LstmDriver(DEFAULT_MODEL.with_name(name), threads=1, prefer_gpu=False)
    pcm = (np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000) * 8000).astype(np.int16)
    loaded[str(Path(DEFAULT_MODEL.with_name(name)).resolve())] = int(len(driver.drive(pcm, 16000, 25.0)))
detector = MtcnnDetector()  # the camera's three networks
frame = np.zeros((120, 160, 3), np.uint8)
detector.search(frame)
for net in ("pnet", "rnet", "onet"):
    loaded[str((WEIGHTS / f"{net}.onnx").resolve())] = len(detector.sessions[net].get_inputs())
avatar = NeuralAvatar.load("grid", search_path())  # the shipped neural avatar, found as the renderer finds it
gen = MouthGenerator(avatar.generator, prefer_gpu=False, threads=1)
crop = np.zeros((gen.size, gen.size, 3), np.uint8)
loaded[str(Path(avatar.generator).resolve())] = int(gen(crop, None, crop).shape[0])
half = Path(avatar.generator).with_name("generator_fp16.onnx")
loaded[str(half.resolve())] = len(ort.InferenceSession(str(half), providers=["CPUExecutionProvider"]).get_inputs())
print(json.dumps({"site": str(site), "assistant": assistant.__file__, "loaded": loaded,
                  "data": [str(p) for p in (SAMPLE_KNOWLEDGE, DEFAULT_PORTRAIT) if p.is_file()],
                  "shipped_avatars": str(SHIPPED_AVATARS)}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv holding the wheel of this tree (deps seen through a path line, not installed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "work", "*.egg-info")
    for name in PACKAGES:
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE", "COPYING"):
        shutil.copy2(REPO / name, src / name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PIP_NO_INDEX"] = "1"  # nothing is downloaded
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp / "dist"), str(src)], cwd=tmp, env=env, capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel, = (tmp / "dist").glob("embodied_assistant-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120, env=env)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True, env=env).stdout.strip())
    # This interpreter's third-party packages, as a plain path: its .pth files (the editable
    # install's hook to the source tree among them) are not run for a path listed this way.
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (purelib / "zz_shared_deps.pth").write_text("".join(f"{d}\n" for d in sorted(deps)))
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
                              str(wheel)], cwd=tmp, env=env, capture_output=True, text=True, timeout=240)
    assert install.returncode == 0, install.stderr[-3000:]
    return python, purelib, wheel, env, tmp


@pytest.mark.slow
def test_the_wheel_ships_every_model_and_each_loads_from_the_install(installed):
    python, purelib, wheel, env, tmp = installed
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [m for m in MODELS if m not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert not any(n.startswith(("tests/", "bench/")) for n in names), "test/bench code shipped"
    outside = tmp / "elsewhere"  # no source tree in the working folder or on the path
    outside.mkdir()
    env = {**env, "HOME": str(outside), "XDG_STATE_HOME": str(outside / "state"), "XDG_DATA_HOME": str(outside / "data")}
    run = subprocess.run([str(python), "-c", LOAD], cwd=outside, env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["assistant"]).resolve().is_relative_to(purelib.resolve()), got["assistant"]
    assert Path(got["site"]) == purelib.resolve()
    loaded = {Path(p).relative_to(purelib.resolve()).as_posix(): v for p, v in got["loaded"].items()}
    assert set(loaded) == set(MODELS), loaded
    assert all(v > 0 for v in loaded.values()), loaded
    assert len(got["data"]) == 2, got  # the brain's sample knowledge and the default portrait
    assert all(Path(p).is_relative_to(purelib) for p in got["data"]), got["data"]
