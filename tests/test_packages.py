"""The four top-level packages import from this repository, and the CLI entry point exists."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["assistant", "services", "hardware", "models"])
def test_package_imports_from_this_repository(name):
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().is_relative_to(REPO), module.__file__


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "assistant", "--help"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    for word in ("up", "run", "status", "say", "tail"):
        assert word in out.stdout


def test_services_never_import_torch():
    """Services run ONNX; torch stays in training code."""
    code = "import sys, assistant.service, assistant.bus, assistant.cli, services.bus, services.echo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr
