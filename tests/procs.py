"""Start real processes (broker, services, the supervisor) for multi-process tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from assistant.bus import BusClient
from assistant.bus.policy import DEFAULT_RULES
from assistant.config import BusSettings

REPO = Path(__file__).resolve().parents[1]
#: ``bus.guest_types`` for test kiosks: scripted visitors and twins publish what services would.
GUESTS_MAY_PUBLISH_ALL = '["*"]'
#: ``bus.publish_rules`` for these tests: a twin under a service's name (a "camera" client that
#: also plays the microphone) may publish every type. The hostile-peer tests use the real rules.
SERVICES_MAY_PUBLISH_ALL = "{" + ", ".join(f'{name} = ["*"]' for name in DEFAULT_RULES) + "}"


class Procs:
    """Children started by one test; all are killed at the end."""

    def __init__(self, runtime_dir: Path) -> None:
        self.runtime_dir = runtime_dir
        # Test clients play any service (a voice twin, a visitor): in a test kiosk every
        # authenticated identity without a rule of its own may publish every type.
        self.env = {**os.environ, "ASSISTANT_BUS__RUNTIME_DIR": str(runtime_dir), "PYTHONUNBUFFERED": "1",
                    "ASSISTANT_BUS__GUEST_TYPES": GUESTS_MAY_PUBLISH_ALL, "ASSISTANT_BUS__PUBLISH_RULES": SERVICES_MAY_PUBLISH_ALL}
        self.env.pop("NOTIFY_SOCKET", None)
        self.children: list[subprocess.Popen] = []
        self.clients: list[BusClient] = []

    @property
    def settings(self) -> BusSettings:
        return BusSettings(runtime_dir=str(self.runtime_dir))

    def start(self, *args: str, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=REPO, env={**self.env, **(env or {})},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw,
        )
        self.children.append(proc)
        return proc

    def broker(self, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = self.start("services.bus", env=env)
        deadline = time.monotonic() + 10
        while not (self.runtime_dir / "bus-sub.sock").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "broker did not bind"
            time.sleep(0.02)
        return proc

    def client(self, topics=(), source: str = "test") -> BusClient:
        client = BusClient(self.settings, source, topics)
        self.clients.append(client)  # closed at cleanup: leaked sockets pile up in the test process
        client.wait_live(10)
        return client

    def cleanup(self) -> None:
        for client in self.clients:
            client.close()
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.communicate()


def wait_for(client: BusClient, predicate, timeout: float = 10.0):
    """Receive until ``predicate(rx)`` is true; return that message (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rx = client.recv(timeout_ms=50)
        if rx is not None and predicate(rx):
            return rx
    raise AssertionError("expected message did not arrive")
