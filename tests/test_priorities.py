"""CPU priorities: the live audio path first, the same under systemd and ``assistant up``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from assistant.supervisor import NICE, SERVICES, Child

UNITS = Path(__file__).resolve().parents[1] / "systemd"


def _directive(unit: Path, key: str) -> str | None:
    for line in unit.read_text().splitlines():
        if line.startswith(key + "="):
            return line.partition("=")[2].strip()
    return None


def test_units_and_supervisor_agree_and_hearing_comes_first():
    for name in SERVICES:
        unit = UNITS / f"assistant-{name}.service"
        if unit.exists():
            assert int(_directive(unit, "Nice") or 0) == NICE.get(name, 0), unit.name
    assert NICE["hearing"] < 0 and all(NICE["hearing"] <= v for v in NICE.values())
    # Under systemd each unit is a cgroup of its own: the weight, not nice, shares the CPU between units.
    assert int(_directive(UNITS / "assistant-hearing.service", "CPUWeight")) > 100


def test_assistant_up_starts_each_service_at_its_priority(tmp_path):
    base = os.getpriority(os.PRIO_PROCESS, 0)
    got = {}
    for name in ("camera", "email", "hearing", "brain"):
        out = tmp_path / name
        child = Child(name, [sys.executable, "-c", f"import os; open({str(out)!r}, 'w').write(str(os.getpriority(os.PRIO_PROCESS, 0)))"])
        child.start()  # as the supervisor starts a service
        assert child.proc.wait(30) == 0
        got[name] = int(out.read_text())
    assert got["camera"] == min(19, base + 5) and got["email"] == min(19, base + 10) and got["brain"] == base
    assert got["hearing"] in (base - 5, base)  # -5 where allowed (root, CAP_SYS_NICE), else unchanged
