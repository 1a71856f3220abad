"""Dependencies point one way: every import in the runtime packages goes down the floors.

The floors, bottom up: ``hardware`` (device drivers and their twins), ``assistant`` (the runtime,
config, messages, CLI), ``services`` (the processes), ``models`` (training and export; its weights
are package data), ``bench`` (measurements; ``bench/lib`` holds what the tests share with it). A
module may import from its own floor and the ones below; no service imports another service; no
runtime package imports ``bench`` or ``tests``. The assistant floor reaches services and builders
only through the entry functions named in ``assistant.entrypoints`` (by string, imported when a
command runs). Every ``import`` and ``from ... import`` is read with ``ast``, inside functions too.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FLOORS = ("hardware", "assistant", "services", "models", "bench")
RUNTIME = ("hardware", "assistant", "services", "models")
FIRST_PARTY = (*FLOORS, "tests", "scripts")

#: Imports that go up a floor on purpose, each with its reason. Keep this short.
EXCEPTIONS = {
    # The kiosk page and the browser microphone are device twins served over HTTP: they use the one
    # guarded web server every web surface shares (Host/Origin checks, token, connection caps).
    ("hardware.microphone_web", "assistant.web"),
    ("hardware.screen_web", "assistant.web"),
}


def _modules(package: str):
    for path in sorted((REPO / package).rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """First-party modules ``module`` imports (relative imports resolved), with line numbers."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
            # ``from services import camera`` imports services.camera
            names = [f"{names[0]}.{a.name}" for a in node.names] if not node.module or names[0] in FIRST_PARTY else names
        else:
            continue
        found += [(n, node.lineno) for n in names if n.split(".")[0] in FIRST_PARTY]
    return found


def _violations(package: str) -> list[str]:
    bad = []
    for module, path in _modules(package):
        floor = FLOORS.index(package)
        for target, line in _imports(module, path):
            top = target.split(".")[0]
            where = f"{path.relative_to(REPO)}:{line}: {module} imports {target}"
            if top not in FLOORS:
                bad.append(f"{where} (runtime code imports {top}/)")
            elif FLOORS.index(top) > floor and (module, ".".join(target.split(".")[:2])) not in EXCEPTIONS:
                bad.append(f"{where} (up from {package}/ to {top}/)")
            elif package == top == "services" and len(module.split(".")) > 1 and len(target.split(".")) > 1 \
                    and module.split(".")[1] != target.split(".")[1]:
                bad.append(f"{where} (one service imports another)")
    return bad


@pytest.mark.parametrize("package", RUNTIME)
def test_imports_point_down_the_floors(package):
    bad = _violations(package)
    assert not bad, "imports against the floors hardware -> assistant -> services -> models -> bench:\n" + "\n".join(bad)


def test_the_check_sees_an_upward_import_a_cross_service_one_and_a_relative_one(tmp_path, monkeypatch):
    """The checker itself finds each kind of violation (so a green run means something)."""
    root = tmp_path / "repo"
    for rel, text in {
        "assistant/__init__.py": "",
        "assistant/cli.py": "def f():\n    from services.camera.recognition import enroll_photos\n",
        "services/__init__.py": "",
        "services/ops/__init__.py": "",
        "services/ops/web.py": "from services.email import credentials\n",
        "services/camera/__init__.py": "",
        "services/camera/x.py": "from . import y\nfrom ..brain import text\nimport bench.lib.wer\n",
        "hardware/__init__.py": "",
        "models/__init__.py": "",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    monkeypatch.setattr(f"{__name__}.REPO", root)
    assert [v.split(": ", 1)[1] for v in _violations("assistant")] == [
        "assistant.cli imports services.camera.recognition (up from assistant/ to services/)"]
    got = sorted(v.split(": ", 1)[1] for v in _violations("services"))
    assert got == ["services.camera.x imports bench.lib.wer (up from services/ to bench/)",
                   "services.camera.x imports services.brain (one service imports another)",
                   "services.ops.web imports services.email (one service imports another)"], got


def test_every_entry_point_is_a_documented_function_in_a_commands_module():
    from assistant.entrypoints import ENTRY_POINTS, FORGET, entry

    assert set(FORGET) <= set(ENTRY_POINTS)
    for name, target in ENTRY_POINTS.items():
        module, _, function = target.partition(":")
        assert module.split(".")[0] in ("services", "models") and module.endswith(".commands"), target
        fn = entry(name)
        assert callable(fn) and inspect.getdoc(fn), f"{target} is not a documented function"
        assert fn.__module__ == module
    with pytest.raises(ValueError, match="no entry point"):
        entry("nope")


def test_the_supervisor_starts_each_service_by_name():
    """The supervisor, on the assistant floor, starts services as ``python -m services.NAME``: each exists."""
    from assistant.supervisor import SERVICES

    for name, module in SERVICES.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{name}: {module} is missing"
        if spec.submodule_search_locations:  # a package: ``python -m`` runs its __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, module
