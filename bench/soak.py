"""Soak: the whole kiosk under ``assistant up`` holds a conversation with mail traffic for minutes.

``SOAK_MINUTES`` (default 10) of turns (a question every ~2 s) and mails (one every 5 turns), then
one JSON line: memory growth of all service processes (RSS, from the end of a warm-up to the
end), open file descriptors, restarts, lost messages (questions without a reply, mails not filed
once, sequence gaps seen on the bus) and turns. Acceptance: RSS growth < 10 %, no fd growth, no
restarts, nothing lost. Progress goes to stderr.

    SOAK_MINUTES=60 python bench/soak.py
    python bench/soak.py --smoke    # the test suite's run: 5 s of warm-up, 6 s of soak
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script from the repository root: import the project, not bench/.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import collections  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

from tests.kiosk_ops import SERVICES, Kiosk  # noqa: E402

QUESTIONS = ["what time is it", "where are the toilets", "is there somewhere to get a coffee", "what is the date", "any messages for me"]


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _usage(pids: list[int]) -> tuple[int, int]:
    """Total RSS (bytes) and open fds of the processes."""
    rss = fds = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
            fds += len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            pass
    return rss, fds


def _by_service(kiosk: Kiosk) -> dict[str, float]:
    """RSS (MiB) of each service process, by name."""
    return {name: round(_usage([pid])[0] / 2**20, 1) for name, pid in sorted(kiosk.pids.items())}


def main() -> int:
    minutes = 0.1 if "--smoke" in sys.argv else float(os.environ.get("SOAK_MINUTES", "10"))
    warmup_s = min(30.0, max(5.0, minutes * 60 * 0.1))
    kiosk = Kiosk().start()
    try:
        up_pid = kiosk.up.pid
        asked: dict[str, str] = {}
        mails: list[int] = []

        def turn(i: int) -> None:
            kiosk.engage()
            asked[kiosk.ask(QUESTIONS[i % len(QUESTIONS)])] = QUESTIONS[i % len(QUESTIONS)]
            if kiosk.mail and i % 5 == 0:
                mails.append(len(mails))
                kiosk.deliver(mails[-1])
            kiosk.pump(2.0)

        i = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < warmup_s:
            turn(i)
            i += 1
        children = _children(up_pid)
        rss0, fds0 = _usage(children)
        restarts0 = sum(kiosk.restarts.values())
        by0 = _by_service(kiosk)
        print(f"soak: warm-up done ({i} turns); {len(children)} processes, RSS {rss0 / 2**20:.0f} MiB, {fds0} fds", file=sys.stderr)
        t1 = time.monotonic()
        next_report = t1 + 60
        while time.monotonic() - t1 < minutes * 60:
            turn(i)
            i += 1
            if time.monotonic() >= next_report:
                next_report += 60
                rss, fds = _usage(_children(up_pid))
                grown = {n: round(m - by0.get(n, m), 1) for n, m in _by_service(kiosk).items()}
                print(f"soak: {(time.monotonic() - t1) / 60:.0f} min, {i} turns, RSS {rss / 2**20:.0f} MiB, {fds} fds, "
                      f"{len(kiosk.replies)} replies; MiB grown by service {grown}", file=sys.stderr)
        if asked:
            kiosk.wait(lambda: all(t in kiosk.replies for t in asked), 20, "the last replies")
        end_children = _children(up_pid)
        rss1, fds1 = _usage(end_children)
        unanswered = [t for t in asked if t not in kiosk.replies]
        lost_mail = 0
        if kiosk.mail:
            deadline = time.monotonic() + 60
            while kiosk.dovecot.test_ids("INBOX") and time.monotonic() < deadline:
                kiosk.pump(1.0)
            filed = collections.Counter(int(x) for x in kiosk.dovecot.test_ids("Processed"))
            lost_mail = sum(1 for m in mails if filed[m] != 1)
        result = {
            "minutes": round((time.monotonic() - t1) / 60, 2),
            "rss_growth_pct": round(100 * (rss1 - rss0) / rss0, 2) if rss0 else None,
            "fd_growth": fds1 - fds0,
            # New pids seen in heartbeats, or child processes of `assistant up` replaced.
            "restarts": max(sum(kiosk.restarts.values()) - restarts0, len(set(end_children) - set(children))),
            "lost_messages": len(unanswered) + lost_mail + kiosk.bus.sub.gaps,
            "turns": len(asked),
            "mails": len(mails),
            "rss_mib": [round(rss0 / 2**20, 1), round(rss1 / 2**20, 1)],
            "rss_mib_by_service": {n: [by0.get(n), m] for n, m in _by_service(kiosk).items()},
            "services": SERVICES,
        }
    finally:
        kiosk.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
