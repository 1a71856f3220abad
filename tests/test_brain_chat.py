"""The optional chat endpoint against a local server that speaks the OpenAI chat-completions protocol."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.brain.chat import ChatClient, ChatError
from services.brain.conversation import Brain, Job
from services.brain.mailstore import MailStore

from .brain_helpers import FIXED_NOW, Clock, settings


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output clean
        pass

    def do_POST(self):
        mode = self.server.mode
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, dict(self.headers), body))
        if mode == "slow":
            time.sleep(1.5)
        if mode == "error":
            self.send_response(500)
            self.end_headers()
            return
        question = body["messages"][-1]["content"]
        payload = {
            "ok": {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", "content": f"  You asked:\n{question}  "}, "finish_reason": "stop"}]},
            "slow": {"choices": [{"message": {"content": "too late"}}]},
            "nochoices": {"choices": []},
        }.get(mode)
        data = b"{not json" if mode == "badjson" else json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # the slow mode writes after the client gave up: a broken pipe is expected


@pytest.fixture
def server():
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.mode, srv.requests = "ok", []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(srv, timeout=0.5):
    return ChatClient(f"http://127.0.0.1:{srv.server_port}/v1", "tiny", timeout, api_key="sekrit", assistant_name="Ada")


def test_answer_from_the_endpoint(server):
    assert _client(server).ask("why is the sky blue") == "You asked: why is the sky blue"
    path, headers, body = server.requests[0]
    assert path == "/v1/chat/completions" and headers["Authorization"] == "Bearer sekrit"
    assert body["model"] == "tiny" and body["messages"][0]["role"] == "system" and "Ada" in body["messages"][0]["content"]


@pytest.mark.parametrize("mode, words", [("slow", "too slow"), ("error", "HTTP 500"), ("badjson", "invalid JSON"), ("nochoices", "no choices")])
def test_failures_are_one_clear_error(server, mode, words):
    server.mode = mode
    t0 = time.monotonic()
    with pytest.raises(ChatError, match=words):
        _client(server).ask("hello?")
    assert time.monotonic() - t0 < 1.2  # the timeout holds


def test_unreachable_endpoint():
    with pytest.raises(ChatError, match="unreachable"):
        ChatClient("http://127.0.0.1:9/v1", "m", 0.5).ask("hi")


def test_brain_uses_chat_for_open_questions_and_falls_back_when_it_fails(server, tmp_path):
    brain = Brain(settings(), MailStore(tmp_path / "s.sqlite"), None, _client(server), clock_ns=Clock(), now=lambda: FIXED_NOW)
    job = Job("t1", "why is the sky blue", "", 1, 0)
    answer = brain.think(job)
    assert (answer.skill, answer.text) == ("chat", "You asked: why is the sky blue")
    server.mode = "slow"
    answer = brain.think(job)
    assert answer.skill == "fallback" and "I don't know" in answer.text
