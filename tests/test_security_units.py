"""The units: exposure <= 2.5 each (``make verify-units`` fails above), the limits and filters
in place, restart on any exit, a hook on failure, and a key pair per unit as a credential."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.install import MAX_EXPOSURE, Plan, install, unit_exposure

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
NO_NETWORK = ("bus", "camera", "hearing", "renderer", "brain")

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None or shutil.which("systemd-sysusers") is None,
                                reason="systemd tools missing (apt-get install systemd)")


def _service(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif "=" in line and not line.startswith("#") and section == "[Service]":
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_hardening_directives():
    common = _service(UNITS / "assistant-.service.d" / "10-common.conf")
    assert common["Restart"] == ["always"] and common["SystemCallFilter"][0] == "@system-service"
    assert common["MemoryMax"] and common["TasksMax"] and common["UMask"] == ["0077"]
    assert "OnFailure=assistant_failed@%n.service" in (UNITS / "assistant-.service.d" / "10-common.conf").read_text()
    for path in sorted(UNITS.glob("assistant-*.service")):
        name = path.stem.removeprefix("assistant-")
        unit = _service(path)
        assert f"bus-{name}.key_secret:/etc/assistant/keys/private/{name}.key_secret" in unit["LoadCredential"], path
        if name in NO_NETWORK:
            assert unit["IPAddressDeny"] == ["any"] and unit["IPAddressAllow"] == ["localhost"], path


def test_exposure_is_at_most_2_5_and_a_weakened_unit_fails_verify(tmp_path):
    plan = Plan(tmp_path / "root", REPO, Path(sys.executable), ["voice", "renderer", "hearing", "camera", "email", "brain"], enable=False)
    install(plan)
    exposure = unit_exposure(plan)
    assert len(exposure) == 9 and max(exposure.values()) <= MAX_EXPOSURE, exposure
    keys = plan.path("/etc/assistant/keys")
    assert (keys / "private").stat().st_mode & 0o777 == 0o700 and (keys / "private/bus.key_secret").stat().st_mode & 0o777 == 0o600
    assert sorted(p.stem for p in (keys / "public").glob("*.key")) == sorted(
        ["bus", "camera", "hearing", "voice", "renderer", "email", "brain", "ops", "supervisor", "operator"])
    # Strip the hardening from one unit (as a careless drop-in would): the check must fail.
    dropin = plan.path("/etc/systemd/system/assistant-.service.d/10-common.conf")
    kept = [line for line in dropin.read_text().splitlines()
            if not line.startswith(("SystemCall", "Protect", "Private", "Restrict", "Capability", "NoNewPriv", "User="))]
    dropin.write_text("\n".join(kept) + "\n")
    weak = unit_exposure(plan)
    assert max(weak.values()) > MAX_EXPOSURE
    out = subprocess.run([sys.executable, "-m", "assistant", "install", "--root", str(plan.root), "--no-user", "--no-enable", "--verify"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    # install rewrites the shipped units, so a staged root is clean again: the shipped ones pass.
    assert out.returncode == 0 and "exposure:" in out.stdout, out.stderr
