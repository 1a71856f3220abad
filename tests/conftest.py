"""Shared fixtures: the shared data folder, isolated runtime directories, process helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    env = os.environ.get("ASSISTANT_SHARED_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data", REPO / "shared" / "data"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; tests that need it skip when it is absent."""
    path = _shared_data()
    if path is None:
        pytest.skip("shared data folder (../shared/data) is absent")
    return path


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``gpu`` unless onnxruntime offers the CUDA provider."""
    try:
        import onnxruntime

        has_cuda = "CUDAExecutionProvider" in onnxruntime.get_available_providers()
    except Exception:  # noqa: BLE001 - any failure means no usable GPU
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (onnxruntime CUDA provider)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def procs(tmp_path):
    """Real child processes with their own bus runtime directory; killed after the test."""
    from .procs import Procs

    p = Procs(tmp_path / "run")
    yield p
    p.cleanup()
