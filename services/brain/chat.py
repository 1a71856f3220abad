"""Optional open-question answers from an OpenAI-compatible chat endpoint, with a hard timeout.

Only used when ``[brain] chat_url`` is set; any failure (timeout, HTTP error, bad JSON) raises
``ChatError`` and the brain falls back to its "I don't know" answer.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request

log = logging.getLogger(__name__)

SYSTEM_PROMPT = (
    "You are {name}, the receptionist of a public kiosk, speaking aloud to a visitor. "
    "Answer in one or two short, plain sentences without lists, markdown or links. "
    "If you do not know, say so."
)


class ChatError(RuntimeError):
    """The endpoint did not give a usable answer in time."""


class ChatClient:
    """POST ``{url}/chat/completions`` with one system and one user message."""

    def __init__(self, url: str, model: str, timeout_s: float, api_key: str = "", assistant_name: str = "Ada", max_tokens: int = 120) -> None:
        self.url = url.rstrip("/") + "/chat/completions"
        self.model = model
        self.timeout_s = timeout_s
        self.api_key = api_key
        self.system = SYSTEM_PROMPT.format(name=assistant_name)
        self.max_tokens = max_tokens

    def ask(self, question: str) -> str:
        body = json.dumps({
            "model": self.model,
            "messages": [{"role": "system", "content": self.system}, {"role": "user", "content": question}],
            "max_tokens": self.max_tokens,
            "temperature": 0.3,
        }).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = json.loads(resp.read(1_000_000))
        except urllib.error.HTTPError as exc:
            raise ChatError(f"chat endpoint answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise ChatError(f"chat endpoint unreachable or too slow: {getattr(exc, 'reason', exc)}") from None
        except ValueError as exc:
            raise ChatError(f"chat endpoint sent invalid JSON: {exc}") from None
        try:
            text = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ChatError("chat endpoint reply has no choices[0].message.content") from None
        if not isinstance(text, str) or not text.strip():
            raise ChatError("chat endpoint gave an empty answer")
        return " ".join(text.split())
