"""The kiosk's web servers (status page, face page, browser microphone) on aiohttp, with the same guards.

Every server the kiosk opens to a browser goes through ``WebServer``:

- **Host allow-list** (DNS-rebinding defence): a request whose ``Host`` header is not the
  loopback names, the listening address or one of ``web.allowed_hosts`` gets 421 and nothing
  else. A page of another site that rebinds its name to 127.0.0.1 therefore reads nothing.
- **Origin check** for WebSockets and POSTs: a browser request from a page of another origin
  is refused (403), so a web page elsewhere cannot drive the microphone or the text box.
- **Token** (the status page's rule): on loopback no token is needed unless one is configured;
  any other address needs one. With a token every route needs it, as ``Authorization: Bearer``
  or ``?token=``. The token is compared in constant time and never logged (no access log; the
  query string never reaches a log line).
- **Timeouts and a cap**: a connection that sends no complete request head within
  ``header_timeout_s`` (half-open, slowloris, an idle keep-alive) is closed; at most
  ``max_connections`` are open at once, and when the cap is reached the oldest connection that
  is not serving a request makes room, so idle sockets cannot lock real viewers out.

The aiohttp application runs on an event loop of its own, on a worker (``workers``: the
service's group, ``assistant.workers``; a private one when none is given, as for the device twins
in ``hardware/``); the service's loop and threads reach it through ``call_soon`` / ``run``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Coroutine
from urllib.parse import urlsplit

from assistant.workers import Workers

log = logging.getLogger(__name__)

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


class WebError(RuntimeError):
    """A web server cannot start; the message says what to fix."""


@dataclass(frozen=True)
class WebLimits:
    """Guards shared by every web server (``[web]`` in the config)."""

    allowed_hosts: tuple[str, ...] = ()
    """Host names a browser may use besides the loopback names and the listening address."""
    max_connections: int = 64
    header_timeout_s: float = 10.0


def web_limits(config) -> WebLimits:
    """The ``[web]`` section as ``WebLimits``."""
    w = config.web
    return WebLimits(allowed_hosts=tuple(w.allowed_hosts), max_connections=w.max_connections, header_timeout_s=w.header_timeout_s)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(name: str) -> str:
    """The access token: the first line of the file ``name`` (relative: in ``$CREDENTIALS_DIRECTORY``)."""
    if not name:
        return ""
    from assistant.paths import credential_path

    path = credential_path(name)
    try:
        token = (path.read_text(encoding="utf-8").splitlines() or [""])[0].strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise WebError(f"ops.token_file: cannot read {path} ({type(exc).__name__}); check the path and its permissions") from None
    if not token:
        raise WebError(f"ops.token_file: {path} is empty; write a token in it or clear ops.token_file")
    return token


def _host_name(value: str) -> str:
    """``Host`` header or netloc -> lower-case host name without port or brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        value = value.split(":", 1)[0]
    return value.rstrip(".")


class WebServer:
    """Serve an aiohttp app on ``host:port`` from a worker of ``workers`` (``port=0``: any free port, see ``url``).

    ``build(app)`` adds the routes; it runs on the server's loop, so handlers may create asyncio
    objects there. ``on_refused(reason)`` is called (on the server's thread) for every refused
    request or connection: ``host``, ``origin``, ``token``, ``cap``.
    """

    def __init__(self, name: str, build: Callable[["object"], None], *, host: str, port: int, token: str = "",
                 limits: WebLimits = WebLimits(), on_refused: Callable[[str], None] | None = None,
                 port_key: str = "", workers: Workers | None = None) -> None:
        try:
            from aiohttp import web  # noqa: F401
        except ImportError:
            raise WebError("aiohttp is not installed; pip install 'embodied-assistant[web]'") from None
        if not is_loopback(host) and not token:
            raise WebError(f"the {name} on non-loopback address {host!r} needs a token; set ops.token_file, or use 127.0.0.1")
        self.name = name
        self.token = token
        self.limits = limits
        self.on_refused = on_refused or (lambda reason: None)
        self.refused: dict[str, int] = {}
        self.evicted = 0
        bind_host = host.strip("[]")
        allowed = {*LOOPBACK_NAMES, bind_host.lower(), *(h.lower() for h in limits.allowed_hosts)}
        if bind_host in ("0.0.0.0", "::"):
            allowed.discard(bind_host)  # a wildcard address is no name a browser uses
        self.allowed_hosts = frozenset(allowed)
        family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((bind_host, port))
        except OSError as exc:
            self._sock.close()
            where = f"set {port_key} to another port" if port_key else "pick another port"
            raise WebError(f"the {name} cannot listen on {host}:{port}: {exc.strerror or exc}; {where} (0: any)") from None
        self._sock.listen(256)
        self._sock.setblocking(False)
        self.port = self._sock.getsockname()[1]
        shown = f"[{bind_host}]" if family == socket.AF_INET6 else bind_host
        self.url = f"http://{shown}:{self.port}/"
        self._build = build
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._workers = workers if workers is not None else Workers(f"web-{name}")
        self._thread: threading.Thread | None = None
        self._runner: Any = None  # aiohttp's AppRunner and its server, made on the loop (aiohttp loads lazily)
        self._server: Any = None

    # --- life cycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> "WebServer":
        self._thread = self._workers.start(f"web-{self.name}", self._run)
        if not self._ready.wait(timeout):
            raise WebError(f"the {self.name} did not start within {timeout:.0f} s")
        if self._error is not None:
            raise WebError(f"the {self.name} could not start: {self._error}")
        return self

    def close(self, timeout: float = 5.0) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._sock.close()
            return
        fut = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        try:
            fut.result(timeout)
        except Exception:  # noqa: BLE001 - closing: log, never raise
            log.debug("%s: shutdown not clean", self.name, exc_info=True)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def call_soon(self, fn: Callable, *args) -> None:
        """Run ``fn(*args)`` on the server's loop (from any thread)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def run(self, coro: Coroutine, timeout: float = 5.0):
        """Run a coroutine on the server's loop and wait for its result (from another thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def connections(self) -> int:
        """Open connections (not counting ones being closed)."""
        if self._server is None:
            return 0
        return sum(not getattr(h, "_force_close", False) for h in self._server.connections)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        from aiohttp import web

        app = web.Application(middlewares=[self._guard_factory()], client_max_size=1 << 20)
        self._build(app)
        # No access log: request lines carry ?token= (and the transcript is nobody's business).
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     keepalive_timeout=self.limits.header_timeout_s, handler_cancellation=True)
        await self._runner.setup()
        self._server = _guarded(self._runner.server, self)
        self._aserver = await self.loop.create_server(self._server, sock=self._sock, backlog=256)

    async def _shutdown(self) -> None:
        self._aserver.close()
        if self._server is not None:
            for handler in self._server.connections:
                handler.force_close()
        await self._runner.cleanup()

    # --- guards -------------------------------------------------------------------------------
    def refuse(self, reason: str) -> None:
        self.refused[reason] = self.refused.get(reason, 0) + 1
        if self.refused[reason] == 1:
            log.warning("%s: refused a request (%s); counted from now on, logged once", self.name, reason)
        try:
            self.on_refused(reason)
        except Exception:  # noqa: BLE001
            log.debug("on_refused failed", exc_info=True)

    def authorised(self, request) -> bool:
        if not self.token:
            return True
        auth = request.headers.get("Authorization", "")
        offered = auth[len("Bearer "):].strip() if auth.startswith("Bearer ") else request.query.get("token", "")
        return hmac.compare_digest(offered.encode(), self.token.encode())

    def host_allowed(self, value: str) -> bool:
        return bool(value) and _host_name(value) in self.allowed_hosts

    def origin_allowed(self, origin: str) -> bool:
        if origin in ("", "null"):
            return origin == ""  # "null": a sandboxed or file:// page, never trusted
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and self.host_allowed(parts.netloc)

    def _guard_factory(self):
        from aiohttp import web

        @web.middleware
        async def guard(request, handler):
            if not self.host_allowed(request.headers.get("Host", "")):
                self.refuse("host")
                return web.Response(status=421, text="this server answers only to its own host names (see web.allowed_hosts)\n")
            upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
            if (upgrade or request.method not in ("GET", "HEAD")) and not self.origin_allowed(request.headers.get("Origin", "")):
                self.refuse("origin")
                return web.Response(status=403, text="requests from pages of other sites are refused\n")
            if not self.authorised(request):
                self.refuse("token")
                return web.Response(status=401, text="a token is required: Authorization: Bearer TOKEN, or ?token=TOKEN\n",
                                    headers={"WWW-Authenticate": 'Bearer realm="assistant"'})
            response = await handler(request)
            if not getattr(response, "prepared", False):
                headers = response.headers
                headers.setdefault("Cache-Control", "no-store")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
            return response

        return guard


def _guarded(server, owner: WebServer):
    """aiohttp's low-level server with a cap on open connections (oldest idle one evicted first)."""
    from aiohttp.web_protocol import RequestHandler

    class CappedHandler(RequestHandler):
        def connection_made(self, transport) -> None:
            conns = [h for h in server.connections if not getattr(h, "_force_close", False)]  # closing ones hold no slot
            if len(conns) >= owner.limits.max_connections and not _evict_idle(conns):
                owner.refuse("cap")
                transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                self._manager = None  # so connection_lost is a no-op for a handler that never started
                transport.close()
                return
            super().connection_made(transport)

    def _evict_idle(conns) -> bool:
        for handler in conns:  # insertion order: oldest first
            # Idle: no request being served and none complete in its queue (a head still arriving,
            # or nothing sent yet, or a keep-alive between requests).
            if getattr(handler, "_current_request", None) is None and not getattr(handler, "_messages", None):
                owner.evicted += 1
                handler.force_close()
                return True
        return False

    def factory():
        return CappedHandler(server, loop=server._loop, **server._kwargs)

    server.__class__ = type("CappedServer", (server.__class__,), {"__call__": lambda self: factory()})
    return server
