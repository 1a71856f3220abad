"""``make demo``: run the assistant on simulated devices through a scripted scene and record it.

What it runs grows with the services that exist; today: the bus and the diagnostic echo service,
with the bus traffic recorded to ``<out>/bus.log``.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assistant.cli import _describe
from assistant.config import BusSettings
from assistant.messages import Heartbeat, Say, SystemState

SERVICES = ["echo"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="folder for the recording")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runtime = tempfile.mkdtemp(prefix="assistant-demo-")
    env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": runtime, "ASSISTANT_SUPERVISOR__SERVICES": repr(SERVICES).replace("'", '"')}
    up = subprocess.Popen([sys.executable, "-m", "assistant", "up"], env=env)
    from assistant.bus import BusClient

    try:
        time.sleep(0.5)
        client = BusClient(BusSettings(runtime_dir=runtime), "demo", [""])
        client.wait_live(20)
        ready: set[str] = set()
        log_lines = []
        deadline = time.monotonic() + 30
        said = False
        while time.monotonic() < deadline:
            rx = client.recv(timeout_ms=100)
            if rx is not None and rx.msg.TYPE != "system.probe":
                log_lines.append(_describe(rx))
                if isinstance(rx.msg, (SystemState, Heartbeat)) and rx.msg.state == "ready":
                    ready.add(rx.msg.service)
            if not said and set(SERVICES) <= ready:
                client.publish(Say(text="Hello! I am the kiosk assistant."), turn="echo:demo")
                said = True
                deadline = time.monotonic() + 2.5
        (out / "bus.log").write_text("\n".join(log_lines) + "\n")
        subprocess.run([sys.executable, "-m", "assistant", "status"], env=env, check=False)
        print(f"demo: {len(log_lines)} bus messages recorded in {out / 'bus.log'}", file=sys.stderr)
        client.close()
        return 0 if said else 1
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(10)


if __name__ == "__main__":
    raise SystemExit(main())
