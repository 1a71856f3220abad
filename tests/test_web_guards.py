"""The web servers' guards on the real status page process: 400 half-open connections do not lock
viewers out (nor make threads), a foreign Host header (DNS rebinding) and a foreign Origin are
refused, and the token never reaches the log even at DEBUG."""

import os
import socket
import time
import urllib.error
import urllib.request

import pytest

from assistant.messages import Heartbeat, SystemState
from assistant.web import WebLimits, WebServer, _host_name

from .mailservers import free_port
from .procs import wait_for


def _start_ops(procs, port, **env):
    proc = procs.start("services.ops", env={"ASSISTANT_OPS__PORT": str(port), **env})
    watcher = procs.client([SystemState.TYPE, Heartbeat.TYPE], source="web-test")
    wait_for(watcher, lambda rx: rx.msg.service == "ops" and rx.msg.state == "ready", 20)
    return proc


def _raw(port, request: bytes, timeout=5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        return data


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_half_open_connections_do_not_exhaust_the_status_page(procs):
    procs.broker()
    port = free_port()
    proc = _start_ops(procs, port, ASSISTANT_WEB__MAX_CONNECTIONS="64", ASSISTANT_WEB__HEADER_TIMEOUT_S="3")
    threads_before = _threads(proc.pid)
    half_open = []
    try:
        for _ in range(400):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
            half_open.append(s)
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert r.status == 200 and r.read() == b"ok\n"
        assert time.monotonic() - t0 < 2.0
        assert _threads(proc.pid) <= threads_before + 2  # no thread per connection
        # Half-open connections are closed after the header timeout (recv sees the end of stream).
        time.sleep(3.5)
        for s in half_open[-20:]:
            s.settimeout(2.0)
            try:
                assert s.recv(100) == b""
            except ConnectionResetError:
                pass
    finally:
        for s in half_open:
            s.close()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200


def test_foreign_host_and_origin_are_refused_and_the_token_is_never_logged(procs, tmp_path):
    procs.broker()
    port = free_port()
    (tmp_path / "token").write_text("t0k3n-never-logged\n")
    proc = _start_ops(procs, port, ASSISTANT_OPS__TOKEN_FILE=str(tmp_path / "token"), ASSISTANT_SERVICE__LOG_LEVEL="debug")
    # DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends its own Host.
    reply = _raw(port, b"GET /api/status?token=t0k3n-never-logged HTTP/1.1\r\nHost: evil.example:%d\r\nConnection: close\r\n\r\n" % port)
    assert reply.startswith(b"HTTP/1.1 421") and b"transcripts" not in reply
    assert b" 400 " in _raw(port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").split(b"\r\n")[0]  # no Host at all
    ok = _raw(port, b"GET /api/status?token=t0k3n-never-logged HTTP/1.1\r\nHost: localhost:%d\r\nConnection: close\r\n\r\n" % port)
    assert ok.startswith(b"HTTP/1.1 200") and b"transcripts" in ok
    foreign = _raw(port, b"POST /api/status?token=t0k3n-never-logged HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\n"
                         b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    assert foreign.startswith(b"HTTP/1.1 403")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?token=wrong", timeout=5)
    assert err.value.code == 401
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer t0k3n-never-logged"})
    with urllib.request.urlopen(req, timeout=5) as r:
        metrics = r.read().decode()
    assert 'assistant_service_up{service="ops"}' in metrics
    proc.terminate()
    out, err_text = proc.communicate(timeout=20)
    assert "refused a request (host)" in err_text
    assert "t0k3n-never-logged" not in out + err_text


def test_host_names_and_the_cap_on_the_server_itself():
    assert _host_name("LOCALHOST:8790") == "localhost" and _host_name("[::1]:80") == "::1" and _host_name("127.0.0.1") == "127.0.0.1"
    hits = []

    def build(app):
        from aiohttp import web

        async def hello(request):
            return web.Response(text="hi")

        app.router.add_get("/", hello)

    server = WebServer("test", build, host="127.0.0.1", port=0, limits=WebLimits(allowed_hosts=("kiosk.lan",), max_connections=4),
                       on_refused=hits.append).start()
    try:
        assert _raw(server.port, b"GET / HTTP/1.1\r\nHost: kiosk.lan\r\nConnection: close\r\n\r\n").endswith(b"hi")
        assert _raw(server.port, b"GET / HTTP/1.1\r\nHost: kiosk.lan.evil.example\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 421")
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(10)]
        time.sleep(0.2)
        assert server.connections <= 5 and server.evicted >= 5  # the oldest idle ones made room
        assert _raw(server.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").endswith(b"hi")
        for s in idle:
            s.close()
        assert hits == ["host"]
    finally:
        server.close()
    with pytest.raises(Exception, match="needs a token"):
        WebServer("test", build, host="0.0.0.0", port=0)


def test_the_server_runs_on_the_given_workers_or_a_private_group():
    from assistant.workers import Workers

    def build(app):
        from aiohttp import web

        async def hello(request):
            return web.Response(text="hi")

        app.router.add_get("/", hello)

    workers = Workers("svc")
    server = WebServer("given", build, host="127.0.0.1", port=0, workers=workers).start()
    try:
        assert workers.alive == ["web-given"]
        assert _raw(server.port, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").endswith(b"hi")
    finally:
        server.close()
    assert workers.alive == []  # close joins it
    alone = WebServer("alone", build, host="127.0.0.1", port=0)
    alone.close()  # never started: only the socket to close
    alone = WebServer("alone", build, host="127.0.0.1", port=0).start()
    try:
        assert alone._workers.alive == ["web-alone"] and workers.alive == []
    finally:
        alone.close()
    assert alone._workers.alive == []
