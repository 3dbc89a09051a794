"""A new history is offered the run's candidates, and what the student picks links to items."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from slimrec.llm.backends.base import Completion, SamplingConfig
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.serve.app import create_app
from slimrec.serve.explainer import Explainer


class LabelPicker:
    """Answers every prompt by picking its first two offered candidates by label (asked in
    two turns: steps 1 and 2 to the history, step 3 to the candidates)."""

    model_id = "picker"
    batch_size = 1

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.asked: list[list[dict]] = []

    def check(self) -> None:
        pass

    def generate(self, requests, sampling):
        for i, request in enumerate(requests):
            self.asked.append(request.messages)
            self.prompts.append(request.messages[-1]["content"])
            steps_1_2, step_3 = (
                "Step 1: likes these.\nStep 2:\n1. Kind",
                "Step 3:\nUnder Kind:\n- C01\n- C02",
            )
            if "<candidates>" not in request.messages[-1]["content"]:
                text = steps_1_2
            elif request.messages[-2]["role"] == "assistant":
                text = step_3
            else:
                text = f"{steps_1_2}\n{step_3}"
            yield i, Completion(text=text, model=self.model_id)


@pytest.mark.parametrize("version", ["slim-cot-v3", "slim-cot-v4"])
def test_a_new_history_is_offered_candidates_as_in_training_and_its_picks_link_to_items(
    service, version
):
    from slimrec.methods.slim.candidate_labels import offered
    from slimrec.methods.slim.teach import candidate_pool

    offering = PromptConfig(version=version, candidates=10, per_category=2)
    backend = LabelPicker()
    saved = service.explainer, service.pool, service.offering
    service.explainer = Explainer(backend, offering, SamplingConfig(), saved[0].encoder)
    service.pool, service.offering = candidate_pool(service.dataset, offering), offering
    history = [4, 5, 6]
    try:
        reply = TestClient(create_app(service, api_key="", close_service=False)).post(
            "/recommend", json={"history": history, "k": 3}
        )
    finally:
        service.explainer.close()
        service.explainer, service.pool, service.offering = saved
    assert reply.status_code == 200, reply.text
    labels = offered(backend.prompts[-1])
    if version == "slim-cot-v4":  # the candidates come after the student's steps 1 and 2
        assert len(backend.asked) == 2 and "<candidates>" not in backend.prompts[0]
        assert backend.asked[1][2] == {
            "role": "assistant",
            "content": "Step 1: likes these.\nStep 2:\n1. Kind",
        }
    shown = [labels["C01"], labels["C02"]]
    body = reply.json()
    assert body["rationale"]["steps"][2].splitlines()[1:] == [f"- {t}" for t in shown]
    titles = service.dataset.titles()
    assert not {titles[i] for i in history} & set(labels.values())  # new to this history
    linked = [s["item"] for s in body["rationale"]["suggestions"]]
    assert all(item is not None for item in linked) and len(linked) == 2
