"""A tiny, real OpenAI-compatible HTTP server whose misbehaviour each test scripts.

It listens on a free 127.0.0.1 port (``http.server`` in a thread, one thread per
connection) and speaks just enough of the chat-completions format for the ``openai``
SDK. A test passes a *behaviour*: a function of the request body and how many times this
prompt has been asked (1, 2, ...) that returns a :class:`Reply` -- an answer, a status
with headers, a garbage body, or a delay past the client's timeout. Every request body
is recorded, so tests count exactly what the teacher asked for.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fault-model"
ANSWER = (
    "Step 1: The user likes pens and paper.\n"
    "Step 2: 1. Pens 2. Paper 3. Ink 4. Folders 5. Desks\n"
    "Step 3: Pens: Pilot G2. Paper: Rhodia pad."
)


@dataclass
class Reply:
    """What the server sends: ``body`` as JSON (dict) or raw bytes, after ``delay_s``."""

    status: int = 200
    body: dict | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def answer(text: str = ANSWER, *, prompt_tokens: int = 50, completion_tokens: int = 30) -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def error(status: int, message: str = "scripted failure", **headers: str) -> Reply:
    body = {"error": {"message": message, "type": "server_error", "code": status}}
    return Reply(status=status, body=body, headers=headers)


Behaviour = Callable[[dict, int], Reply]


def always_ok(body: dict, attempt: int) -> Reply:
    return answer()


def user_text(body: dict) -> str:
    """The user message of a chat request (what identifies a prompt)."""
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


class FaultServer:
    """``with FaultServer(behaviour) as server: ... server.url`` -- base URL ending in /v1."""

    def __init__(self, behaviour: Behaviour = always_ok):
        self.behaviour = behaviour
        self.requests: list[dict] = []  # chat-completion bodies, in arrival order
        self.model_list_calls = 0
        self.models_reply: Reply | None = None  # what GET /models answers (None: a list)
        self.auth_headers: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0  # most chat requests being handled at once
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def prompts(self) -> list[str]:
        with self._lock:
            return [user_text(b) for b in self.requests]

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._closing.set()  # wakes handlers that are "hanging"
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _record(self, body: dict, auth: str) -> int:
        with self._lock:
            self.requests.append(body)
            self.auth_headers.append(auth)
            key = user_text(body)
            self.attempts[key] += 1
            return self.attempts[key]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, reply: Reply) -> None:
                if reply.delay_s and server._closing.wait(reply.delay_s):
                    return
                data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                data = data.encode() if isinstance(data, str) else data
                try:
                    self.send_response(reply.status)
                    is_json = not isinstance(reply.body, bytes)
                    self.send_header("Content-Type", "application/json" if is_json else "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name.replace("_", "-"), value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to do

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    server.model_list_calls += 1
                    models = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
                    self._send(server.models_reply or Reply(body=models))
                else:
                    self._send(error(404, f"no route {self.path}"))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(error(404, f"no route {self.path}"))
                    return
                attempt = server._record(body, self.headers.get("Authorization", ""))
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._send(server.behaviour(body, attempt))
                finally:
                    with server._lock:
                        server.in_flight -= 1

        return Handler
