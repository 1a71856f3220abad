"""A short run of the soak bench (``bench/soak.py``; the real one runs for SOAK_MINUTES=10 or more)."""

import json
import os
import subprocess
import sys

import pytest

from .procs import REPO


@pytest.mark.slow
def test_a_short_soak_loses_nothing_restarts_nothing_and_leaks_no_fds(shared_data):
    out = subprocess.run([sys.executable, "bench/soak.py"], cwd=REPO, env={**os.environ, "SOAK_MINUTES": "0.3"},
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(result) >= {"minutes", "rss_growth_pct", "fd_growth", "restarts", "lost_messages", "turns"}
    assert result["turns"] >= 5 and result["minutes"] >= 0.3
    assert result["restarts"] == 0 and result["lost_messages"] == 0 and result["fd_growth"] <= 0
    # Memory is judged by the real soak (make soak, 10 min or more): over 20 s a warming cache's
    # noise is larger than any leak, so this run only checks the figure is reported per service.
    assert set(result["rss_mib_by_service"]) >= {"voice", "hearing", "brain"}
