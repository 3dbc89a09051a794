"""New histories wait for the student off the event loop; a full queue answers 503."""

from __future__ import annotations

import asyncio
import threading

import httpx

from slimrec.llm.backends.base import Completion, SamplingConfig
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.serve.app import create_app
from slimrec.serve.explainer import Explainer

ANSWER = "Step 1: likes pens.\nStep 2: pens, ink.\nStep 3: Pen model 5."


class GatedBackend:
    """Answers only once ``gate`` is set, so requests pile up while it is closed."""

    model_id = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batch_size = 1

    def check(self) -> None:
        pass

    def generate(self, requests, sampling):
        assert self.gate.wait(30)
        for i, _ in enumerate(requests):
            yield i, Completion(text=ANSWER, model=self.model_id)


def test_full_queue_is_503_with_retry_after_and_the_loop_stays_free(service):
    backend = GatedBackend()
    saved = service.explainer
    service.explainer = Explainer(
        backend,
        PromptConfig(),
        SamplingConfig(max_new_tokens=8),
        saved.encoder,
        max_pending=1,
        max_batch=1,
        seconds_per_answer=3,
    )
    app = create_app(service, api_key="", close_service=False)

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            first = asyncio.create_task(c.post("/recommend", json={"history": [4, 5], "k": 3}))
            while service.explainer.pending == 0:
                await asyncio.sleep(0.01)
            busy = await c.post("/recommend", json={"history": [6, 7], "k": 3})
            # The event loop is not blocked by the waiting generation:
            health = await c.get("/health")
            known = await c.get(f"/users/{service.catalog.user_raw[0]}/recommendations")
            backend.gate.set()
            return await first, busy, health, known

    try:
        first, busy, health, known = asyncio.run(scenario())
    finally:
        service.explainer.close()
        service.explainer = saved
    assert busy.status_code == 503 and busy.headers["retry-after"] == "3"
    assert "busy" in busy.json()["detail"]
    assert health.json()["pending_generations"] == 1 and known.status_code == 200
    assert first.status_code == 200
    steps = first.json()["rationale"]["steps"]
    assert steps == ["likes pens.", "pens, ink.", "Pen model 5."]
