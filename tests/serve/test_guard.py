"""The request guard at the ASGI level: what is answered before any body byte is read."""

from __future__ import annotations

import asyncio

from slimrec.serve.guard import RequestGuard

KEY = "s3cret-key"


def call(guard: RequestGuard, path: str, headers: dict[str, str], chunks: list[bytes]):
    """Run one request through ``guard``; (status, body, how many chunks were read)."""
    sent, reads = [], []

    async def receive():
        reads.append(1)
        i = len(reads) - 1
        more = i + 1 < len(chunks)
        return {"type": "http.request", "body": chunks[i] if i < len(chunks) else b"",
                "more_body": more}  # fmt: skip

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(guard(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, len(reads)


async def reading_app(scope, receive, send):
    """Reads the whole body, then answers 200 with its length."""
    total, more = 0, True
    while more:
        message = await receive()
        total += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(total).encode()})


def guard(**kw) -> RequestGuard:
    base = dict(
        key=KEY,
        needs_key=lambda path: path != "/health",
        error_body=lambda status, message: {"detail": message},
        max_body_bytes=1000,
    )
    return RequestGuard(reading_app, **(base | kw))


def test_a_missing_or_wrong_key_is_refused_before_the_body_is_read():
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer nope"}):
        status, body, reads = call(guard(), "/recommend", headers, [b"x" * 500] * 10)
        assert (status, reads) == (401, 0) and b"invalid or missing API key" in body
    assert call(guard(), "/recommend", {"X-API-Key": KEY}, [b"x" * 10])[:2] == (200, b"10")
    assert call(guard(), "/recommend", {"Authorization": f"Bearer {KEY}"}, [b"x"])[0] == 200
    assert call(guard(), "/health", {}, [b""])[0] == 200  # open paths stay open
    only_bearer = guard(accept_x_api_key=False)
    assert call(only_bearer, "/v1/x", {"X-API-Key": KEY}, [b""])[0] == 401


def test_a_declared_oversized_body_is_refused_unread_and_a_streamed_one_midway():
    status, body, reads = call(guard(), "/r", {"X-API-Key": KEY, "Content-Length": "5000"}, [])
    assert (status, reads) == (413, 0) and b"larger than 1,000 bytes" in body
    status, _, reads = call(guard(), "/r", {"X-API-Key": KEY}, [b"x" * 400] * 10)
    assert status == 413 and reads == 3  # stopped at the chunk that passed the limit
    assert call(guard(), "/r", {"X-API-Key": KEY}, [b"x" * 400] * 2)[:2] == (200, b"800")


def test_without_a_key_configured_nothing_is_asked():
    assert call(guard(key=None), "/recommend", {}, [b"abc"])[:2] == (200, b"3")
