"""Brain benchmark: how long the brain takes from a final transcript to the ``voice.say`` of its answer.

Run from the repository root: ``python bench/brain.py``. Progress goes to stderr; the last stdout
line is one JSON object (``--smoke``: a few repeats, for the test suite). Measures, on this machine:

- the MiniLM sentence embedder (onnxruntime): model load, one short question embedded (p50/p95);
- the knowledge base: one lookup (embed + nearest question, p50/p95);
- the real brain process over the real bus: ``hearing.transcript`` published -> ``voice.say``
  received, for rule skills (time, date, help) and knowledge questions, and its start-up time
  (process start -> ready, including loading the model and embedding the knowledge base).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The repository root replaces this script's folder on the path: bench/email.py would otherwise
# shadow the standard library's email package (imported by importlib.metadata, among others).
sys.path[0] = str(REPO)

import services.brain  # noqa: E402,F401  (single-threaded BLAS, as in the service)
import numpy as np  # noqa: E402

from assistant.config import BusSettings  # noqa: E402
from assistant.config.schema import BrainSettings  # noqa: E402

RULE_QUESTIONS = ["what time is it", "what is the date", "help", "thank you"]
KB_QUESTIONS = ["can I use the toilet", "when do you close", "wifi code please", "where should I put my car", "is there a lift",
                "how do I get to the station", "i lost my phone", "where can I get a coffee"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def bench_engines(repeats: int = 40) -> dict:
    from services.brain.embedder import SentenceEmbedder
    from services.brain.service import load_knowledge

    t0 = time.perf_counter()
    emb = SentenceEmbedder()
    load_ms = (time.perf_counter() - t0) * 1000
    emb.embed(["warm up"])
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        emb.embed([KB_QUESTIONS[i % len(KB_QUESTIONS)]])
        times.append((time.perf_counter() - t) * 1000)
    log(f"embed one question: p50 {pct(times, 50)} ms")
    t0 = time.perf_counter()
    kb = load_knowledge(BrainSettings())
    kb_load_ms = (time.perf_counter() - t0) * 1000
    lookups = []
    for i in range(repeats):
        t = time.perf_counter()
        kb.answer(KB_QUESTIONS[i % len(KB_QUESTIONS)])
        lookups.append((time.perf_counter() - t) * 1000)
    log(f"knowledge lookup: p50 {pct(lookups, 50)} ms")
    return {
        "model_load_ms": round(load_ms, 1), "embed_ms_p50": pct(times, 50), "embed_ms_p95": pct(times, 95),
        "kb_load_ms": round(kb_load_ms, 1), "kb_lookup_ms_p50": pct(lookups, 50), "kb_lookup_ms_p95": pct(lookups, 95),
    }


def bench_service(rounds: int) -> dict:
    from assistant.bus import BusClient
    from assistant.messages import Done, Person, Say, SystemState, Transcript

    runtime = Path(tempfile.mkdtemp(prefix="bench-brain-"))
    env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(runtime), "ASSISTANT_BUS__GUEST_TYPES": '["*"]', "ASSISTANT_BRAIN__STORE_PATH": str(runtime / "brain.sqlite"),
           "ASSISTANT_SERVICE__LOG_LEVEL": "warning", "PYTHONPATH": str(REPO)}
    env.pop("NOTIFY_SOCKET", None)
    procs = [subprocess.Popen([sys.executable, "-m", "services.bus"], cwd=REPO, env=env)]
    try:
        while not (runtime / "bus-sub.sock").exists():
            time.sleep(0.02)
        bus = BusClient(BusSettings(runtime_dir=str(runtime)), "bench", [Say.TYPE, SystemState.TYPE])
        bus.wait_live(10)
        t0 = time.monotonic()
        procs.append(subprocess.Popen([sys.executable, "-m", "services.brain"], cwd=REPO, env=env))
        while True:
            rx = bus.recv(timeout_ms=30000)
            if rx is None:
                raise RuntimeError("brain did not become ready")
            if isinstance(rx.msg, SystemState) and rx.msg.service == "brain" and rx.msg.state == "ready":
                break
        start_ms = (time.monotonic() - t0) * 1000
        log(f"brain ready in {start_ms:.0f} ms")

        def next_say() -> Say:
            while True:
                rx = bus.recv(timeout_ms=10000)
                if rx is None:
                    raise RuntimeError("no voice.say")
                if isinstance(rx.msg, Say):
                    bus.publish(Done(utterance_id="u", status="finished", say_id=rx.msg.say_id, last=True))
                    return rx.msg

        bus.publish(Person(event="engaged", track_id=1, identity="alice"))
        next_say()  # greeting
        results: dict[str, list[float]] = {"rule": [], "knowledge": []}
        for i in range(rounds):
            for kind, questions in (("rule", RULE_QUESTIONS), ("knowledge", KB_QUESTIONS)):
                text = questions[i % len(questions)]
                now = time.monotonic_ns()
                bus.publish(Transcript(text=text, confidence=0.9, engine="bench", speech_start_ns=now - 10**9, speech_end_ns=now), turn=f"b{i}{kind}")
                next_say()
                results[kind].append((time.monotonic_ns() - now) / 1e6)
        log(f"transcript -> voice.say: rule p50 {pct(results['rule'], 50)} ms, knowledge p50 {pct(results['knowledge'], 50)} ms")
        return {
            "service_ready_ms": round(start_ms, 1),
            "transcript_to_say_ms_rule_p50": pct(results["rule"], 50), "transcript_to_say_ms_rule_p95": pct(results["rule"], 95),
            "transcript_to_say_ms_knowledge_p50": pct(results["knowledge"], 50), "transcript_to_say_ms_knowledge_p95": pct(results["knowledge"], 95),
            "turns": 2 * rounds,
        }
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> int:
    smoke = "--smoke" in sys.argv  # the test suite's run: the same paths, a few repeats
    out = {**bench_engines(3 if smoke else 40), **bench_service(rounds=1 if smoke else 15), "cores": os.cpu_count()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
