"""Publisher and subscriber helpers that every process uses to talk to the broker.

Slow joiners: ZeroMQ drops what a PUB sends before the broker's subscription has reached it, and
what the broker forwards before a SUB's subscription has reached the broker. ``BusClient.wait_live``
closes both gaps with a round trip: it publishes ``system.probe`` messages to itself until one
comes back through the broker. After that, nothing published is lost to start-up.

Broker restarts: a PUB silently drops what it sends while the broker is gone, and again until the
new broker's subscription has reached it. ``Publisher`` watches its connection (a ZeroMQ socket
monitor) and holds messages from the moment the link drops until ``rejoin_delay_s`` after it is
back, then sends them in order; subscribers reconnect and resubscribe by themselves, and the
broker holds traffic for ``bus.settle_s`` after it binds so that they have done so before it flows.
"""

from __future__ import annotations

import collections
import logging
import os
import secrets
import threading
import time
from typing import Iterable

import zmq
from zmq.utils.monitor import parse_monitor_message

from assistant.config import BusSettings
from assistant.messages import MAX_FRAME_BYTES, DecodeStats, Message, Probe, Received, decode, encode

from .endpoints import BusError, Endpoints
from .keys import KeyStore, curve_client, keys_for_endpoint

log = logging.getLogger(__name__)

__all__ = ["BusClient", "BusError", "Publisher", "Subscriber"]


#: At most one "lost N messages" line this often (forged or real gaps cannot flood the journal).
_GAP_LOG_EVERY_S = 5.0


class Publisher:
    """Publishes typed messages; safe to call from several threads.

    While the broker is unreachable, messages wait here (at most ``hold_max``, the oldest dropped
    and counted in ``lost``) and go out once the link is back; see the module docstring.
    """

    #: After the link is back, wait this long for the broker's subscription before sending what
    #: was held (on ipc or loopback it arrives within a millisecond; margin for a loaded host).
    rejoin_delay_s = 0.15

    def __init__(self, ctx: zmq.Context, endpoint: str, source: str, hwm: int, hold_max: int = 10_000, *,
                 keys: KeyStore | None = None, identity: str | None = None) -> None:
        self.source = source
        self._sock = ctx.socket(zmq.PUB)
        # CURVE: the broker takes only known keys, and stamps the key's identity as ``source``.
        curve_client(self._sock, keys or keys_for_endpoint(endpoint), identity or source)
        self._sock.setsockopt(zmq.SNDHWM, hwm)
        self._sock.setsockopt(zmq.LINGER, 500)
        # A unique monitor address: pyzmq's default is named after the socket's fd, which a socket
        # closed by the garbage collector (monitor still bound) can hand to the next one.
        self._monitor = self._sock.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED,
                                                      addr=f"inproc://bus-monitor-{secrets.token_hex(8)}")
        self._sock.connect(endpoint)
        self._lock = threading.Lock()
        # Sequence numbers count per message type, so a subscriber that filters on a topic
        # still sees consecutive numbers and can detect gaps.
        self._seq: dict[str, int] = {}
        self.sent = 0
        self.hold_max = hold_max
        self._held: collections.deque[list] = collections.deque()
        self._down_since: float | None = None  # link lost at (monotonic), None while up
        self._back_at: float | None = None  # link back at, waiting for the subscription
        self.outages = 0
        self.lost = 0

    def publish(self, msg: Message, *, turn: str = "") -> None:
        with self._lock:
            seq = self._seq.get(msg.TYPE, 0)
            frames = encode(msg, seq=seq, source=self.source, turn=turn)
            self._seq[msg.TYPE] = seq + 1
            self._check_link()
            if self._down_since is not None:
                self._hold(frames)
                return
            self._sock.send_multipart(frames, copy=len(frames[-1]) < 65536)
            self.sent += 1

    def maintain(self) -> None:
        """Follow the link and send held messages once it is back; call it now and then (the
        service loop does, every poll) so that nothing waits for the next ``publish``."""
        with self._lock:
            self._check_link()

    def _hold(self, frames: list) -> None:
        if len(self._held) >= self.hold_max:
            self._held.popleft()
            self.lost += 1
        self._held.append(frames)

    def _check_link(self) -> None:
        """Read the socket monitor (lock held); flush what was held once the link has settled."""
        while True:
            try:
                # Checked on every publish: asking for EVENTS is cheaper than a recv that raises Again.
                if not self._monitor.getsockopt(zmq.EVENTS) & zmq.POLLIN:
                    break
                event = parse_monitor_message(self._monitor.recv_multipart(zmq.NOBLOCK))["event"]
            except zmq.ZMQError:  # Again after all, or the monitor closed at shutdown
                break
            now = time.monotonic()
            if event == zmq.EVENT_DISCONNECTED:
                if self._down_since is None:
                    self._down_since = now
                    self.outages += 1
                    log.warning("lost the bus broker; holding outgoing messages until it is back")
                self._back_at = None
            elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED and self._down_since is not None:
                self._back_at = now
        if self._back_at is not None and time.monotonic() - self._back_at >= self.rejoin_delay_s:
            # Make the socket take in the new connection and its subscription now: ``send`` only
            # looks at them once a millisecond, and a burst sent before that is dropped unseen.
            self._sock.getsockopt(zmq.EVENTS)
            held = len(self._held)
            while self._held:
                frames = self._held.popleft()
                self._sock.send_multipart(frames, copy=len(frames[-1]) < 65536)
                self.sent += 1
            log.info("bus broker back after %.1f s; sent %d held message(s)", self._back_at - (self._down_since or self._back_at), held)
            self._down_since = self._back_at = None

    def send_raw(self, frames: list[bytes]) -> None:
        """Send frames as they are (tests and fuzzing only)."""
        with self._lock:
            self._sock.send_multipart(frames)

    def close(self) -> None:
        with self._lock:
            if self._held:
                log.warning("closing with %d message(s) held for an absent bus broker", len(self._held))
            self._sock.disable_monitor()
            self._monitor.close(0)
            self._sock.close()


class Subscriber:
    """Receives typed messages on topic prefixes; counts malformed input and per-sender gaps."""

    def __init__(self, ctx: zmq.Context, endpoint: str, topics: Iterable[str], hwm: int, *,
                 keys: KeyStore | None = None, identity: str = "listener") -> None:
        self.sock = ctx.socket(zmq.SUB)
        curve_client(self.sock, keys or keys_for_endpoint(endpoint), identity)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.stats = DecodeStats()
        self.gaps = 0
        self._gap_logged_at = -_GAP_LOG_EVERY_S
        self._gaps_unlogged = 0
        self._last_seq: dict[tuple[str, str], int] = {}
        self.pending: collections.deque[Received] = collections.deque()
        for topic in topics:
            self.subscribe(topic)

    def subscribe(self, topic: str) -> None:
        """Subscribe to a topic prefix (``""`` for everything)."""
        self.sock.setsockopt(zmq.SUBSCRIBE, topic.encode())

    def unsubscribe(self, topic: str) -> None:
        self.sock.setsockopt(zmq.UNSUBSCRIBE, topic.encode())

    def recv(self, timeout_ms: int | None = None) -> Received | None:
        """Next valid message, or ``None`` after ``timeout_ms`` (malformed input is dropped and counted)."""
        if self.pending:
            return self.pending.popleft()
        return self.recv_wire(timeout_ms)

    def recv_wire(self, timeout_ms: int | None = None) -> Received | None:
        """Like ``recv`` but straight from the socket, ignoring ``pending``."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            wait = -1 if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not self.sock.poll(wait):
                return None
            rx = self.recv_ready()
            if rx is not None:
                return rx
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def recv_ready(self) -> Received | None:
        """Decode one message that is known to be waiting; ``None`` if it was dropped."""
        sock = self.sock
        # Topic and envelope are small and copied (cheaper than Frame objects); payload frames
        # (PCM, JPEG) are taken without an intermediate copy.
        frames: list = [sock.recv()]
        while sock.getsockopt(zmq.RCVMORE):
            frames.append(sock.recv() if len(frames) < 2 else sock.recv(copy=False).buffer)
        rx = decode(frames, self.stats)
        if rx is not None:
            self._track(rx)
        return rx

    def _track(self, rx: Received) -> None:
        h = rx.header
        key = (h.source, h.type)
        last = self._last_seq.get(key)
        if last is not None and h.seq > last + 1:
            lost = h.seq - last - 1
            self.gaps += lost
            now = time.monotonic()
            if now - self._gap_logged_at >= _GAP_LOG_EVERY_S:
                log.warning("lost %d %s message(s) from %s (seq %d -> %d)%s", lost, h.type, h.source, last, h.seq,
                            f"; {self._gaps_unlogged} more gap(s) since the last report" if self._gaps_unlogged else "")
                self._gap_logged_at, self._gaps_unlogged = now, 0
            else:
                self._gaps_unlogged += 1
        # A seq at or below the last one means the sender restarted: start counting afresh.
        self._last_seq[key] = h.seq

    def close(self) -> None:
        self.sock.close()


class BusClient:
    """A process's connection to the bus: one publisher and one subscriber."""

    def __init__(self, settings: BusSettings, source: str, topics: Iterable[str] = (), ctx: zmq.Context | None = None, *,
                 identity: str | None = None) -> None:
        """``identity`` names the key pair (default: ``source``); the broker stamps it as the source."""
        self.settings = settings
        self.endpoints = Endpoints.from_settings(settings)
        self.ctx = ctx or zmq.Context.instance()
        self.keys = KeyStore.from_settings(settings)
        self.identity = identity or source
        self.source = self.identity
        self.pub = Publisher(self.ctx, self.endpoints.publish, self.identity, settings.hwm, keys=self.keys)
        self.sub = Subscriber(self.ctx, self.endpoints.subscribe, topics, settings.hwm, keys=self.keys, identity=self.identity)

    def publish(self, msg: Message, *, turn: str = "") -> None:
        self.pub.publish(msg, turn=turn)

    def recv(self, timeout_ms: int | None = None) -> Received | None:
        self.pub.maintain()
        return self.sub.recv(timeout_ms)

    def wait_live(self, timeout_s: float | None = None) -> None:
        """Block until a probe makes the round trip through the broker; ``BusError`` on timeout.

        Other messages that arrive meanwhile are kept for ``recv``.
        """
        timeout_s = self.settings.connect_timeout_s if timeout_s is None else timeout_s
        nonce = f"{self.source}-{os.getpid()}-{secrets.token_hex(4)}"
        self.sub.subscribe(Probe.TYPE)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                self.pub.publish(Probe(nonce=nonce))
                until = min(deadline, time.monotonic() + 0.05)
                while (left := until - time.monotonic()) > 0:
                    rx = self.sub.recv_wire(int(left * 1000) + 1)
                    if rx is None:
                        continue
                    if isinstance(rx.msg, Probe):
                        if rx.msg.nonce == nonce:
                            return
                    else:
                        self.sub.pending.append(rx)
            raise BusError(f"no answer from the bus broker at {self.endpoints.publish} within {timeout_s:.1f} s; is `assistant run bus` running?")
        finally:
            self.sub.unsubscribe(Probe.TYPE)

    def close(self) -> None:
        self.pub.close()
        self.sub.close()
