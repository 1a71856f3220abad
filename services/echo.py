"""Diagnostic echo service: republishes every message it receives under its own name.

``assistant run echo`` is a bus self-test for operators (run it, then ``assistant tail``), and the
far end of the round-trip tests. It only echoes messages whose ``turn`` starts with ``echo:``, so
it never loops on its own output or disturbs a running kiosk.
"""

from __future__ import annotations

from assistant.messages import REGISTRY, Command, Received
from assistant.service import Service


class EchoService(Service):
    """Echo messages whose turn starts with 'echo:' back onto the bus."""

    name = "echo"
    extra_topics = ("",)  # every topic

    def __init__(self, config) -> None:
        super().__init__(config)
        base_command = self._handlers[Command]
        for mtype in REGISTRY.values():
            self._handlers[mtype] = self.echo
        self._handlers[Command] = lambda rx: (self.echo(rx), base_command(rx))

    def echo(self, rx: Received) -> None:
        if rx.header.source == self.name or not rx.header.turn.startswith("echo:"):
            return
        self.publish(rx.msg, turn="echoed:" + rx.header.turn[len("echo:"):])
        self.count("echoed")


main = EchoService.main

if __name__ == "__main__":
    raise SystemExit(main())
