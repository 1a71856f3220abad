"""The broker: an XSUB/XPUB proxy that authenticates every peer and checks every message.

Publishers connect to the XSUB side, subscribers to the XPUB side. A plain ``zmq.proxy`` would
forward anything from anyone; this one

- takes only CURVE peers whose public key is in the key directory (a ZAP handler on the broker's
  own loop answers ZeroMQ's authentication requests; the key's file name is the identity);
- stamps that identity as the header's ``source`` (what the sender wrote does not count);
- forwards a message only when the identity may publish its type (``policy.Policy``), when
  heartbeats and states name the sender itself, and when its payload frames are within the
  type's limits;
- drops (and counts) frames that are not a registered type with a valid header;
- queues at most ``bus.subscriber_hwm`` messages per subscriber, so one that stops reading loses
  its own messages (it counts them as gaps) instead of growing the broker.

One broker per runtime directory: it holds ``bus.lock`` while it runs; a second one is refused
with a clear line and never touches the first one's sockets.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import time
from pathlib import Path
from typing import IO, cast

import msgspec
import zmq
from zmq.utils.monitor import parse_monitor_message

from assistant.config import BusSettings
from assistant.messages import MAX_FRAME_BYTES, DecodeStats, Heartbeat, decode_header, encode
from assistant.messages.base import check_payloads, restamp
from assistant.messages.system import State

from .endpoints import Endpoints, ensure_private_dir, runtime_dir
from .keys import BROKER, KeyStore
from .policy import SELF_NAMED, Policy

log = logging.getLogger(__name__)

_BATCH = 512  # messages forwarded per poll wake-up, so one side cannot starve the other
_ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_DOMAIN = b"assistant"
_REMEMBERED = 4096  # peers remembered for "logged once": an attacker cycling keys cannot grow this


class BrokerBusy(RuntimeError):
    """Another broker already serves this runtime directory."""


class _Names(msgspec.Struct):
    service: str = ""


_name_decoder = msgspec.msgpack.Decoder(_Names)


class Broker:
    """Binds both sides and forwards validated messages until ``stop`` is set."""

    def __init__(self, settings: BusSettings, ctx: zmq.Context | None = None) -> None:
        self.settings = settings
        self.endpoints = Endpoints.from_settings(settings)
        self.ctx = ctx or zmq.Context.instance()
        self.keys = KeyStore.from_settings(settings)
        self.policy = Policy(settings.publish_rules, settings.guest_types)
        self.stats = DecodeStats()
        self.forwarded = 0
        self.rejected = {"unauthenticated": 0, "handshake_failed": 0, "forbidden": 0, "impersonation": 0, "oversized": 0}
        self.started_ns = time.monotonic_ns()
        self._hb_seq = 0
        self.xsub: zmq.Socket | None = None
        self.xpub: zmq.Socket | None = None
        self.zap: zmq.Socket | None = None
        self._monitors: list[zmq.Socket] = []
        self._peers: dict[bytes, str] = {}
        self._peers_stamp = -1
        self._peers_read_at = 0.0
        self._logged: set = set()
        self._lock_file: IO[str] | None = None
        self._bound: dict[Path, int] = {}  # socket file -> inode this broker created

    # --- start --------------------------------------------------------------------------
    def bind(self) -> None:
        self._check_host()
        if self.endpoints.ipc_paths():
            self._take_lock()
        self._start_zap()
        public, secret = self.keys.pair(BROKER)
        self._reload_peers(force=True)
        self.xsub = self.ctx.socket(zmq.XSUB)
        self.xpub = self.ctx.socket(zmq.XPUB)
        for sock in (self.xsub, self.xpub):
            sock.curve_server = True
            sock.curve_publickey = public
            sock.curve_secretkey = secret
            sock.zap_domain = _DOMAIN
            sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
            sock.setsockopt(zmq.LINGER, 0)
            self._monitors.append(sock.get_monitor_socket(
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL | zmq.EVENT_HANDSHAKE_FAILED_AUTH,
                addr=f"inproc://bus-broker-monitor-{len(self._monitors)}-{os.getpid()}"))
        self.xsub.setsockopt(zmq.RCVHWM, self.settings.hwm)
        self.xsub.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        self.xpub.setsockopt(zmq.SNDHWM, min(self.settings.hwm, self.settings.subscriber_hwm))
        old_umask = os.umask(0o117)  # socket files rw for the owner and the group (operators connect)
        try:
            self.xsub.bind(self.endpoints.publish)
            self.xpub.bind(self.endpoints.subscribe)
        finally:
            os.umask(old_umask)
        for path in self.endpoints.ipc_paths():
            self._bound[path] = path.stat().st_ino
        self.xsub.send(b"\x01")  # subscribe to everything: the broker checks all traffic
        log.info("bus broker listening (CURVE, %d known keys in %s): publishers -> %s, subscribers -> %s",
                 len(self._peers), self.keys.directory, self.endpoints.publish, self.endpoints.subscribe)

    def _check_host(self) -> None:
        if self.settings.transport != "tcp" or self.settings.allow_remote:
            return
        host = self.settings.host
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"bus.host {host!r} is not a loopback address; the bus stays on this machine "
                             "unless bus.allow_remote = true")

    def _take_lock(self) -> None:
        base = ensure_private_dir(runtime_dir(self.settings))
        lock = open(base / "bus.lock", "a+")  # noqa: SIM115 - held open (and flocked) while the broker runs
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise BrokerBusy(f"another bus broker (pid {holder}) already serves {base}; not starting a second one") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock_file = lock
        # The lock is ours: socket files here were left by a killed broker, and would make bind fail.
        for path in self.endpoints.ipc_paths():
            path.unlink(missing_ok=True)

    def _start_zap(self) -> None:
        self.zap = self.ctx.socket(zmq.REP)
        self.zap.setsockopt(zmq.LINGER, 0)
        self.zap.bind(_ZAP_ENDPOINT)

    # --- authentication -----------------------------------------------------------------
    def _reload_peers(self, force: bool = False) -> None:
        # Re-read when the folder changed, and at most once a second regardless (a key written
        # within the file system's timestamp granularity of the last reading leaves no trace).
        stamp, now = self.keys.stamp(), time.monotonic()
        if force or stamp != self._peers_stamp or now - self._peers_read_at >= 1.0:
            self._peers = self.keys.peers()
            self._peers_stamp, self._peers_read_at = stamp, now

    def _answer_zap(self) -> None:
        """Answer waiting ZAP requests: 200 and the identity for a known key, 400 otherwise."""
        assert self.zap is not None
        for _ in range(_BATCH):
            try:
                req = self.zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(req) < 6:
                self.zap.send_multipart([b"1.0", req[1] if len(req) > 1 else b"", b"500", b"bad request", b"", b""])
                continue
            request_id, address, mechanism, creds = req[1], req[3], req[5], req[6:]
            name = None
            if mechanism == b"CURVE" and creds:
                self._reload_peers()  # keys made, rotated or removed since count from the next handshake
                name = self._peers.get(creds[0])
            if name is None:
                self.rejected["unauthenticated"] += 1
                peer = zmq.utils.z85.encode(creds[0]).decode() if mechanism == b"CURVE" and creds and len(creds[0]) == 32 else mechanism.decode(errors="replace")
                self._log_once(("key", peer), "bus: refused a %s peer from %s with an unknown key %s", mechanism.decode(errors="replace"), address.decode(errors="replace") or "local", peer)
                self.zap.send_multipart([b"1.0", request_id, b"400", b"unknown key", b"", b""])
            else:
                self.zap.send_multipart([b"1.0", request_id, b"200", b"OK", name.encode(), b""])

    def _read_monitors(self) -> None:
        for mon in self._monitors:
            while cast(int, mon.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                try:
                    event = parse_monitor_message(mon.recv_multipart(zmq.NOBLOCK))
                except zmq.ZMQError:
                    break
                if event["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                    continue  # counted by the ZAP handler, which saw the key
                self.rejected["handshake_failed"] += 1
                self._log_once(("handshake", event["endpoint"]), "bus: a peer on %s failed the CURVE handshake "
                               "(no key, or not the broker's key); refused", event["endpoint"].decode(errors="replace"))

    def _log_once(self, key, fmt: str, *args) -> None:
        if key in self._logged:
            return
        if len(self._logged) >= _REMEMBERED:
            self._logged.clear()
        self._logged.add(key)
        log.warning(fmt + " (logged once per peer; counted in the broker's heartbeat)", *args)

    # --- running ------------------------------------------------------------------------
    def counters(self) -> dict[str, float]:
        return {"forwarded": self.forwarded, **self.stats.as_dict(), **{f"rejected_{k}": v for k, v in self.rejected.items()}}

    def heartbeat(self, state: State = "ready") -> None:
        """Publish the broker's own heartbeat straight to subscribers."""
        assert self.xpub is not None
        hb = Heartbeat(service="bus", state=state, pid=os.getpid(), started_ns=self.started_ns, counters=self.counters())
        self.xpub.send_multipart(encode(hb, seq=self._hb_seq, source=BROKER))
        self._hb_seq += 1

    def run(self, should_stop, on_tick=None, tick_s: float = 1.0) -> None:
        """Forward until ``should_stop()`` is true; call ``on_tick()`` every ``tick_s``."""
        assert self.xsub is not None and self.xpub is not None and self.zap is not None
        poller = zmq.Poller()
        poller.register(self.xpub, zmq.POLLIN)
        poller.register(self.zap, zmq.POLLIN)
        for mon in self._monitors:
            poller.register(mon, zmq.POLLIN)
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
            if self.zap in events:
                self._answer_zap()
            if self.xpub in events:
                self._drain_subscriptions()
            if self.xsub in events:
                self._forward_batch()
            if any(mon in events for mon in self._monitors):
                self._read_monitors()

    def _drain_subscriptions(self) -> None:
        assert self.xpub is not None
        for _ in range(_BATCH):
            try:
                self.xpub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return

    def _forward_batch(self) -> None:
        assert self.xsub is not None and self.xpub is not None
        xsub, xpub, policy = self.xsub, self.xpub, self.policy
        for _ in range(_BATCH):
            try:
                first = xsub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            # Topic and envelope are small: copying them is cheaper than Frame objects. Payloads
            # (PCM, JPEG) can be large: those are passed through without a copy.
            frames: list = [first.bytes]
            while xsub.getsockopt(zmq.RCVMORE):
                frames.append(xsub.recv() if len(frames) < 2 else xsub.recv(copy=False))
            checked = decode_header(frames, self.stats)
            if checked is None:
                continue
            header, cls, body = checked
            try:
                identity = cast(str, first.get("User-Id"))
            except zmq.ZMQError:  # no ZAP verdict on this peer: never forwarded
                identity = ""
            if not identity or not policy.allows(identity, header.type):
                self.rejected["forbidden"] += 1
                self._log_once(("type", identity, header.type), "bus: %s may not publish %s; dropped", identity, header.type)
                continue
            if header.type in SELF_NAMED and not policy.speaks_for_others(identity):
                try:
                    named = _name_decoder.decode(body).service
                except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                    named = ""
                if named != identity:
                    self.rejected["impersonation"] += 1
                    self._log_once(("name", identity, named), "bus: %s sent %s naming %r; dropped", identity, header.type, named[:64])
                    continue
            if cls.PAYLOADS:
                problem = check_payloads(cls, frames[2:])
                if problem:
                    self.rejected["oversized"] += 1
                    self._log_once(("size", identity, header.type), "bus: %s from %s: %s; dropped", header.type, identity, problem)
                    continue
            if header.source != identity:
                frames[1] = restamp(header, body, identity)
            self.stats.received += 1
            xpub.send_multipart(frames, copy=False)
            self.forwarded += 1

    # --- stop ---------------------------------------------------------------------------
    def close(self) -> None:
        for sock in (self.xsub, self.xpub):
            if sock is not None:
                try:
                    sock.disable_monitor()
                except zmq.ZMQError:
                    pass
                sock.close()
        for mon in self._monitors:
            mon.close(0)
        if self.zap is not None:
            self.zap.close()
        # Only the socket files this broker made: never a live broker's.
        for path, inode in self._bound.items():
            try:
                if path.stat().st_ino == inode:
                    path.unlink()
            except FileNotFoundError:
                pass
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
