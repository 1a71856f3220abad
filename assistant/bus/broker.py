"""The broker: an XSUB/XPUB proxy that checks every message's header before forwarding it.

Publishers connect to the XSUB side, subscribers to the XPUB side. A plain ``zmq.proxy`` would
forward anything; this loop drops (and counts) frames that are not a registered message type
with a valid header, so one broken sender cannot feed garbage to every service.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import zmq

from assistant.config import BusSettings
from assistant.messages import MAX_FRAME_BYTES, DecodeStats, Heartbeat, decode_header, encode

from .endpoints import Endpoints

log = logging.getLogger(__name__)

_BATCH = 512  # messages forwarded per poll wake-up, so one side cannot starve the other


class Broker:
    """Binds both sides and forwards validated messages until ``stop`` is set."""

    def __init__(self, settings: BusSettings, ctx: zmq.Context | None = None) -> None:
        self.settings = settings
        self.endpoints = Endpoints.from_settings(settings)
        self.ctx = ctx or zmq.Context.instance()
        self.stats = DecodeStats()
        self.forwarded = 0
        self.started_ns = time.monotonic_ns()
        self._hb_seq = 0
        self.xsub: zmq.Socket | None = None
        self.xpub: zmq.Socket | None = None

    def bind(self) -> None:
        for path in self.endpoints.ipc_paths():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o770)
            # A socket file left by a killed broker would make bind fail or split the bus.
            if path.exists():
                path.unlink()
        self.xsub = self.ctx.socket(zmq.XSUB)
        self.xsub.setsockopt(zmq.RCVHWM, self.settings.hwm)
        self.xsub.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self.xsub.setsockopt(zmq.LINGER, 0)
        self.xsub.bind(self.endpoints.publish)
        self.xsub.send(b"\x01")  # subscribe to everything: the broker checks all traffic
        self.xpub = self.ctx.socket(zmq.XPUB)
        self.xpub.setsockopt(zmq.SNDHWM, self.settings.hwm)
        self.xpub.setsockopt(zmq.LINGER, 0)
        self.xpub.bind(self.endpoints.subscribe)
        log.info("bus broker listening: publishers -> %s, subscribers -> %s", self.endpoints.publish, self.endpoints.subscribe)

    def counters(self) -> dict[str, float]:
        return {"forwarded": self.forwarded, **self.stats.as_dict()}

    def heartbeat(self, state: str = "ready") -> None:
        """Publish the broker's own heartbeat straight to subscribers."""
        assert self.xpub is not None
        hb = Heartbeat(service="bus", state=state, pid=os.getpid(), started_ns=self.started_ns, counters=self.counters())
        self.xpub.send_multipart(encode(hb, seq=self._hb_seq, source="bus"))
        self._hb_seq += 1

    def run(self, should_stop, on_tick=None, tick_s: float = 1.0) -> None:
        """Forward until ``should_stop()`` is true; call ``on_tick()`` every ``tick_s``."""
        assert self.xsub is not None and self.xpub is not None
        poller = zmq.Poller()
        poller.register(self.xpub, zmq.POLLIN)
        # Hold traffic (it queues in the XSUB socket) until reconnecting subscribers are back;
        # subscriptions are taken in meanwhile.
        forward_from = time.monotonic() + self.settings.settle_s
        forwarding = False
        next_tick = forward_from
        while not should_stop():
            now = time.monotonic()
            if not forwarding and now >= forward_from:
                poller.register(self.xsub, zmq.POLLIN)
                forwarding = True
            if now >= next_tick:
                next_tick = now + tick_s
                if on_tick is not None:
                    on_tick()
            if not forwarding:
                # Let the XSUB attach reconnecting publishers (and send them its subscription)
                # without reading their messages yet.
                self.xsub.getsockopt(zmq.EVENTS)
            wake = next_tick if forwarding else min(next_tick, forward_from, now + 0.01)
            events = dict(poller.poll(timeout=max(1, int(min(100, (wake - now) * 1000)))))
            if self.xpub in events:
                self._drain_subscriptions()
            if self.xsub in events:
                self._forward_batch()

    def _drain_subscriptions(self) -> None:
        assert self.xpub is not None
        for _ in range(_BATCH):
            try:
                self.xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _forward_batch(self) -> None:
        assert self.xsub is not None and self.xpub is not None
        for _ in range(_BATCH):
            try:
                frames: list = [self.xsub.recv(zmq.NOBLOCK)]
            except zmq.Again:
                return
            # Topic and envelope are small: copying them is cheaper than Frame objects. Payloads
            # (PCM, JPEG) can be large: those are passed through without a copy.
            while self.xsub.getsockopt(zmq.RCVMORE):
                frames.append(self.xsub.recv() if len(frames) < 2 else self.xsub.recv(copy=False))
            if decode_header(frames, self.stats) is None:
                continue
            self.stats.received += 1
            self.xpub.send_multipart(frames, copy=False)
            self.forwarded += 1

    def close(self) -> None:
        for sock in (self.xsub, self.xpub):
            if sock is not None:
                sock.close()
        for path in self.endpoints.ipc_paths():
            Path(path).unlink(missing_ok=True)
