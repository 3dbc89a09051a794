"""A real ``serve-llm`` endpoint for tests: uvicorn on a free 127.0.0.1 port, tiny model.

``llm_server`` yields the base URL (``http://127.0.0.1:PORT/v1``) of an OpenAI-compatible
server answering as model ``LLM_SERVER_MODEL`` ("tiny-lm") with the tiny Llama; use it
with ``OpenAI(base_url=url, api_key="x")`` or any HTTP client.

``tests/conftest.py`` exposes these fixtures to every test (``lively_lm`` lives there).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import pytest

LLM_SERVER_MODEL = "tiny-lm"


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yield its ``/v1`` base URL."""
    import uvicorn

    from slimrec.serve.listen import bind, bound_port

    # Bound here, port 0: no other process can take the port between choosing and serving.
    sock = bind("127.0.0.1", 0)
    port = bound_port(sock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("test LLM server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def llm_server_model() -> str:
    return LLM_SERVER_MODEL


@pytest.fixture(scope="session")
def llm_server(lively_lm) -> Iterator[str]:
    """Base URL of a real OpenAI-compatible server (model "tiny-lm") for the session."""
    from slimrec.llm.backends.hf import HFBackend
    from slimrec.serve.llm_server import create_app

    backend = HFBackend(str(lively_lm), batch_size=8, progress=False)
    backend.check()
    with running(create_app(backend, model_name=LLM_SERVER_MODEL)) as url:
        yield url


@pytest.fixture(scope="session")
def serve_app():
    """The ``running(app)`` context manager, for tests that need their own server."""
    return running
