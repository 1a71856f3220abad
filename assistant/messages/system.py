"""System messages: lifecycle, heartbeats, bus probes."""

from __future__ import annotations

from typing import Literal

from .base import Message, message

State = Literal["starting", "ready", "degraded", "stopping", "stopped", "failed"]
"""``degraded``: running, but something it needs is missing or failing for the moment (the voice
without a speaker, a full disk, a locked database); ``detail`` says which."""


@message("system.state")
class SystemState(Message, frozen=True):
    """A service changed lifecycle state."""

    service: str
    """Service name."""
    state: State
    """New state."""
    pid: int
    """Process id of the service."""
    detail: str = ""
    """Human-readable reason, e.g. the error that made it fail."""


@message("system.heartbeat")
class Heartbeat(Message, frozen=True):
    """Sent at 1 Hz by every service (and the broker)."""

    service: str
    """Service name."""
    state: State
    """Current lifecycle state."""
    pid: int
    """Process id."""
    started_ns: int
    """``monotonic_ns`` when the process started."""
    counters: dict[str, float] = {}
    """A few service counters (messages in/out, malformed, gaps, service-specific)."""


@message("system.probe")
class Probe(Message, frozen=True):
    """Round-trip probe a client sends to itself through the broker to know its subscription is live."""

    nonce: str
    """Random id chosen by the prober."""


@message("system.command")
class Command(Message, frozen=True):
    """Operator command for one service (or ``*``), e.g. reload, or stop for tests."""

    service: str
    """Target service name, or ``*`` for all."""
    command: str
    """Command word."""
    args: dict[str, str] = {}
    """Command arguments."""
