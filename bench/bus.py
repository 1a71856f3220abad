"""Bus throughput and latency between two processes through the broker.

Run from the repository root: ``.venv/bin/python bench/bus.py``. Progress goes to stderr; the
last stdout line is one JSON object:
``small_msgs_per_s, small_p99_ms, pcm_100k_msgs_per_s, pcm_100k_p99_ms, lost``. ``--smoke``: a
few hundred messages per run (the test suite checks that the bench works, not the floors).

Throughput is measured with the sender going flat out; latency (header ts -> receipt) and loss
are measured with the sender paced at the issue's floor rates (20,000 small msgs/s, 1,000 PCM
msgs/s), which is where the floors apply. Latency percentiles skip the first 0.5 s of a paced
run (warm-up); loss counts every message. Sender and receiver freeze their start-up objects out
of the garbage collector, as every service does.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(Path(__file__).resolve().parents[1])

import numpy as np  # noqa: E402

from assistant.bus import BusClient  # noqa: E402
from assistant.config import BusSettings  # noqa: E402
from assistant.messages import Say, Utterance  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def sender(runtime_dir: str, kind: str, count: int, rate: float) -> None:
    client = BusClient(BusSettings(runtime_dir=runtime_dir), f"bench-{kind}")
    client.wait_live(10)
    gc.freeze()  # as every service does after start-up (assistant.service)
    if kind == "small":
        make = lambda i: Say(text="hello", say_id=str(i))  # noqa: E731
    else:
        pcm = os.urandom(100_000)
        make = lambda i: Utterance(utterance_id=str(i), text="", sample_rate=16000, play_at_ns=0, engine="bench", pcm=pcm)  # noqa: E731
    start = time.perf_counter()
    # Paced runs send in 1 ms ticks (20 small or 1 PCM message per tick at the floor rates):
    # sleeping between ticks leaves the CPU to the broker and receiver, as a real service would.
    batch = max(1, int(rate / 1000)) if rate > 0 else count
    for i in range(count):
        if rate > 0 and i % batch == 0:
            due = start + i / rate
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
        client.publish(make(i))
    time.sleep(1.0)  # let the queue drain before the socket closes
    client.close()


def measure(runtime_dir: str, kind: str, count: int, rate: float) -> dict[str, float]:
    topic = Say.TYPE if kind == "small" else Utterance.TYPE
    client = BusClient(BusSettings(runtime_dir=runtime_dir), f"bench-recv-{kind}", [topic])
    client.wait_live(10)
    gc.freeze()
    proc = subprocess.Popen([sys.executable, __file__, "--sender", runtime_dir, kind, str(count), str(rate)], cwd=REPO)
    lat = np.empty(count)
    n = 0
    first = last = 0.0
    deadline = time.monotonic() + 60 + count / max(rate, 1000)
    while n < count and time.monotonic() < deadline:
        rx = client.recv(timeout_ms=3000)
        if rx is None:
            break
        if not rx.header.source.startswith("bench-"):
            continue
        now_ns = time.monotonic_ns()
        if n == 0:
            first = now_ns / 1e9
        last = now_ns / 1e9
        lat[n] = (now_ns - rx.header.ts_ns) / 1e6
        n += 1
    proc.wait(30)
    client.close()
    lost = count - n
    # Latency percentiles leave out the first half second of a paced run (warm-up: fresh
    # processes fault in their pages and grow their socket buffers); loss counts every message.
    warm = int(rate * 0.5) if rate > 0 else 0
    lat = lat[warm:n] if n > warm else lat[:n]
    n_lat = len(lat)
    return {
        "msgs_per_s": (n - 1) / (last - first) if n > 1 and last > first else 0.0,
        "p50_ms": float(np.percentile(lat, 50)) if n_lat else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if n_lat else float("nan"),
        "p999_ms": float(np.percentile(lat, 99.9)) if n_lat else float("nan"),
        "max_ms": float(lat.max()) if n_lat else float("nan"),
        "lost": lost,
    }


def main(smoke: bool = False) -> None:
    # --smoke (the test suite's run): the same four runs with a few hundred messages each.
    runs = [("small", 100_000, 0), ("small", 60_000, 20_000), ("pcm", 5_000, 0), ("pcm", 3_000, 1_000)]
    if smoke:
        runs = [(kind, count // 50, rate) for kind, count, rate in runs]
    with tempfile.TemporaryDirectory(prefix="bench-bus-") as runtime_dir:
        env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": runtime_dir, "ASSISTANT_SERVICE__LOG_LEVEL": "warning", "ASSISTANT_BUS__GUEST_TYPES": '["*"]'}
        broker = subprocess.Popen([sys.executable, "-m", "services.bus"], cwd=REPO, env=env)
        try:
            while not Path(runtime_dir, "bus-sub.sock").exists():
                time.sleep(0.02)
            results = {}
            for kind, count, rate in runs:
                r = measure(runtime_dir, kind, count, rate)
                label = f"{kind} {'flat out' if rate == 0 else f'at {rate:.0f}/s'}"
                print(f"{label}: {r['msgs_per_s']:.0f} msgs/s, p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms, "
                      f"p99.9 {r['p999_ms']:.3f} ms, max {r['max_ms']:.3f} ms, lost {r['lost']}", file=sys.stderr)
                results[(kind, rate)] = r
        finally:
            broker.terminate()
            broker.wait(5)
    small_max, small_paced = results[("small", 0)], results[("small", 20_000)]
    pcm_max, pcm_paced = results[("pcm", 0)], results[("pcm", 1_000)]
    print(json.dumps({
        "small_msgs_per_s": round(small_max["msgs_per_s"]),
        "small_p99_ms": round(small_paced["p99_ms"], 3),
        "pcm_100k_msgs_per_s": round(pcm_max["msgs_per_s"]),
        "pcm_100k_p99_ms": round(pcm_paced["p99_ms"], 3),
        "lost": int(sum(r["lost"] for r in results.values())),
    }))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--sender":
        sender(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        main(smoke="--smoke" in sys.argv)
