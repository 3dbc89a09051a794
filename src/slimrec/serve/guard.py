"""The door of both HTTP servers: the API key and the body size, before any body is read.

A pure ASGI middleware (no Starlette ``BaseHTTPMiddleware``, whose per-request cost is
about a millisecond) in front of ``slimrec serve`` and ``slimrec serve-llm``:

* an API route without the right key is answered 401 at once, so an unauthenticated
  client cannot make the server read (and hold) a large body;
* a body over ``max_body_bytes`` is answered 413: at once when ``Content-Length`` says
  so, else as soon as the streamed bytes pass the limit (chunked uploads);
* every response gets ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY``.

Keys are compared in constant time and never logged. Each server shapes the error body
(``{"detail": ...}`` for ours, OpenAI's ``{"error": {...}}`` for serve-llm).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a 200-item history of 300-character titles is ~70 kB
# On every response: no MIME sniffing, never inside another site's frame.
SAFE_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]


def given_key(headers: dict[bytes, bytes]) -> str:
    """The key a request carries: ``X-API-Key``, or ``Authorization: Bearer ...``."""
    key = headers.get(b"x-api-key", b"").decode("latin-1")
    bearer = headers.get(b"authorization", b"").decode("latin-1")
    if not key and bearer.lower().startswith("bearer "):
        key = bearer[7:]
    return key


class RequestGuard:
    """``RequestGuard(app, key=..., needs_key=..., error_body=...)``; see the module."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        key: str | None,
        needs_key: Callable[[str], bool],
        error_body: Callable[[int, str], dict[str, Any]],
        max_body_bytes: int = MAX_BODY_BYTES,
        accept_x_api_key: bool = True,
    ):
        self.app, self.key, self.needs_key = app, key, needs_key
        self.error_body, self.max_body_bytes = error_body, max_body_bytes
        self.accept_x_api_key = accept_x_api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.key and self.needs_key(scope.get("path", "")):
            if not self.accept_x_api_key:
                headers.pop(b"x-api-key", None)
            if not hmac.compare_digest(given_key(headers).encode(), self.key.encode()):
                await self._answer(send, 401, "invalid or missing API key", auth=True)
                return
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body_bytes:
            await self._answer(send, 413, self._too_large())
            return
        received, started, refused = 0, False, False

        async def limited_receive() -> Message:
            # Past the limit: answer 413 ourselves and tell the app the client left, so it
            # stops reading (frameworks turn an exception here into a 400 of their own).
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    refused = True
                    if not started:
                        await self._answer(send, 413, self._too_large())
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # answered already; whatever the app says now goes nowhere
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SAFE_HEADERS]}
            await send(message)

        await self.app(scope, limited_receive, tracked_send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes:,} bytes"

    async def _answer(self, send: Send, status: int, message: str, auth: bool = False) -> None:
        body = json.dumps(self.error_body(status, message)).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        headers += SAFE_HEADERS
        if auth:
            headers.append((b"www-authenticate", b"Bearer"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
