"""Email intake latency and throughput: a new mail in the mailbox -> ``email.received`` on the bus.

Run from the repository root as root (it starts its own dovecot): ``.venv/bin/python bench/email.py``.
Progress goes to stderr; the last stdout line is one JSON object:
``idle_to_event_ms_p50, idle_to_event_ms_p90, msgs_per_s, lost, duplicates``. ``--smoke``: a few
mails (the test suite checks that the bench works).

Latency: mails arrive one at a time, at random moments, while the service idles in IMAP IDLE;
measured from the moment the mail file lands in the maildir (as a delivery agent puts it there)
to the moment the brain (this process) receives ``email.received``. Throughput: a burst of mails
lands at once; mails per second from the first landing to the last event. The brain acks every
mail; at the end every mail must be in the processed folder: ``lost`` counts the ones that never
became an event, ``duplicates`` the events beyond one per mail.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Python puts this script's folder first on the path, where this file would shadow the standard
# library's ``email`` package for everything imported below: swap it for the repository root.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from assistant.bus import BusClient  # noqa: E402
from assistant.config import BusSettings  # noqa: E402
from assistant.messages import EmailAck, EmailReceived, SystemState  # noqa: E402
from tests.mailservers import Dovecot, dovecot_available, service_env  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
N_LATENCY = 30
N_BURST = 200


def mail(n: int) -> bytes:
    return (f"X-Test-Id: {n}\r\nFrom: Alice <alice@example.com>\r\nTo: kiosk@example.com\r\nSubject: bench {n}\r\n"
            f"Message-ID: <bench{n}@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease announce item {n}.\r\n").encode()


def main() -> None:
    smoke = "--smoke" in sys.argv  # the test suite's run: three mails one by one, a burst of ten
    n_latency, n_burst = (3, 10) if smoke else (N_LATENCY, N_BURST)
    if not dovecot_available():
        print("bench/email.py needs dovecot (apt install dovecot-imapd) and root", file=sys.stderr)
        if smoke:
            print(json.dumps({"skipped": "needs dovecot (apt install dovecot-imapd) and root"}))
            raise SystemExit(0)
        raise SystemExit(2)
    rng = random.Random(8)
    events: list[EmailReceived] = []
    with tempfile.TemporaryDirectory(prefix="bench-email-") as tmp:
        tmp_path = Path(tmp)
        dovecot = Dovecot().start()
        env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(tmp_path / "run"), "ASSISTANT_BUS__GUEST_TYPES": '["*"]', "ASSISTANT_SERVICE__LOG_LEVEL": "warning",
               **service_env(dovecot, tmp_path)}
        broker = subprocess.Popen([sys.executable, "-m", "services.bus"], cwd=REPO, env=env)
        service = None
        try:
            while not (tmp_path / "run" / "bus-sub.sock").exists():
                time.sleep(0.02)
            brain = BusClient(BusSettings(runtime_dir=str(tmp_path / "run")), "bench-brain", [EmailReceived.TYPE, SystemState.TYPE])
            brain.wait_live(10)
            service = subprocess.Popen([sys.executable, "-m", "services.email"], cwd=REPO, env=env)
            while True:
                rx = brain.recv(timeout_ms=20_000)
                assert rx is not None, "email service did not start"
                if isinstance(rx.msg, SystemState) and rx.msg.service == "email" and rx.msg.state == "ready":
                    break
            time.sleep(2.0)  # connected and idling

            def receive(until: float) -> EmailReceived | None:
                rx = brain.recv(timeout_ms=max(1, int((until - time.monotonic()) * 1000)))
                if rx is None or not isinstance(rx.msg, EmailReceived):
                    return None
                events.append(rx.msg)
                brain.publish(EmailAck(mail_id=rx.msg.mail_id))
                return rx.msg

            latencies = []
            for n in range(n_latency):
                time.sleep(rng.uniform(0.3, 1.3))  # arrivals at random moments
                t0 = time.monotonic_ns()
                dovecot.deliver(mail(n))
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline:
                    got = receive(deadline)
                    if got is not None and got.mail_id == f"<bench{n}@example.com>":
                        latencies.append((time.monotonic_ns() - t0) / 1e6)
                        break
                print(f"latency {n}: {latencies[-1] if latencies else float('nan'):.0f} ms", file=sys.stderr)

            time.sleep(1.5)
            t0 = time.monotonic()
            for n in range(n_latency, n_latency + n_burst):
                dovecot.deliver(mail(n))
            burst_ids = {f"<bench{n}@example.com>" for n in range(n_latency, n_latency + n_burst)}
            seen: set[str] = set()
            t_last = t0
            deadline = time.monotonic() + 120
            while seen != burst_ids and time.monotonic() < deadline:
                got = receive(deadline)
                if got is not None and got.mail_id in burst_ids:
                    seen.add(got.mail_id)
                    t_last = time.monotonic()
            rate = len(seen) / (t_last - t0) if t_last > t0 else 0.0
            print(f"burst of {n_burst}: {len(seen)} events in {t_last - t0:.2f} s = {rate:.0f} mails/s", file=sys.stderr)

            # Keep acking until everything is filed, then count.
            total = n_latency + n_burst
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                receive(time.monotonic() + 0.5)
                if len(dovecot.test_ids("Processed")) >= total:
                    break
            processed = dovecot.test_ids("Processed")
            distinct = {e.mail_id for e in events}
            lost = total - len(distinct & {f"<bench{n}@example.com>" for n in range(total)})
            duplicates = len(events) - len(distinct)
            print(f"processed folder: {len(processed)}/{total}; inbox left: {len(dovecot.test_ids('INBOX'))}", file=sys.stderr)
            lost = max(lost, total - len(set(processed)))
        finally:
            if service is not None:
                service.terminate()
                service.wait(10)
            broker.terminate()
            broker.wait(5)
            dovecot.close()
    lat = np.array(latencies)
    print(json.dumps({
        "idle_to_event_ms_p50": round(float(np.percentile(lat, 50)), 1) if len(lat) else None,
        "idle_to_event_ms_p90": round(float(np.percentile(lat, 90)), 1) if len(lat) else None,
        "msgs_per_s": round(rate, 1),
        "lost": int(lost),
        "duplicates": int(duplicates),
    }))


if __name__ == "__main__":
    main()
