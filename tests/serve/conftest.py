"""Fixtures of the serving tests: one tiny finished run, its service, app and live server.

The run (tests/run_fixtures.py) is built once per session; the service loads its SLIM
model and its student once per module. ``live_url`` runs the app under uvicorn on a free
127.0.0.1 port, like a deployment.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.llm_server_fixtures import running

from slimrec.serve.app import create_app
from slimrec.serve.service import RecommendService

__all__ = ["api", "live_url", "service"]


@pytest.fixture(scope="session", autouse=True)
def _offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("SLIMREC_API_KEY", raising=False)
        yield


@pytest.fixture(scope="session")
def service(tiny_run) -> Iterator[RecommendService]:
    """SLIM on SASRec from the tiny run, with its distilled student."""
    svc = RecommendService(tiny_run, method="slim", backbone="sasrec", max_pending=4)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def api(service) -> TestClient:
    """An in-process client of the app (no API key)."""
    return TestClient(create_app(service, api_key="", close_service=False))


@pytest.fixture(scope="session")
def live_url(service) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of the app under uvicorn (no API key)."""
    with running(create_app(service, api_key="", close_service=False)) as url:
        yield url.removesuffix("/v1")
