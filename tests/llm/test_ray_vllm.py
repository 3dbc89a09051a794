"""Ray Data's vLLM processor as the engine on Ray: a real local Ray cluster and a real vLLM
engine (its CPU build, in .venv-vllm with ray[data]), on the shipped SmolLM2. The student's
path is tested beside the vLLM server it must agree with, in test_vllm_backend.py."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from tests.vllm_env import SMALL, needs_ray_vllm

from slimrec.cluster import RayConfig
from slimrec.llm.backends.base import ChatRequest, LLMError, SamplingConfig
from slimrec.llm.backends.vllm import MEMORY_ENV, VLLMBackend
from slimrec.llm.ray_vllm import generate_shards, vllm_sampling

# Starts Ray or vLLM: scripts/test.sh runs these in a process of their own (-m engine).
pytestmark = pytest.mark.engine


@needs_ray_vllm
@pytest.mark.network
@pytest.mark.slow
def test_a_structured_vllm_teacher_on_ray_answers_in_three_steps(tmp_path, monkeypatch):
    """The teacher's JSON schema reaches vLLM's guided decoding through Ray Data: a 135M
    model writes whole three-step answers for every user, stored in the answer cache."""
    from tests.methods.slim.test_teach import make_dataset

    from slimrec.methods.slim.prompts import PromptConfig
    from slimrec.methods.slim.teach import TeacherConfig, teach

    monkeypatch.setenv(MEMORY_ENV, str(SMALL))
    data = make_dataset(tmp_path, n_users=3)
    config = TeacherConfig(
        backend="vllm", model="smollm2-135m", dtype="float32", batch_size=3, structured=True,
        drop_repeats=False,  # the 135M model's title is its category again: the grammar is tested
        prompt=PromptConfig(per_category=1, max_title_chars=30), ray=RayConfig(replicas=1),
        sampling=SamplingConfig(max_new_tokens=512),  # covers the schema's longest answer
    )  # fmt: skip
    cache = tmp_path / "answers.sqlite"
    result = teach(data, tmp_path / "r.parquet", config, n_users=3, cache=cache, progress=False)
    frame = pd.read_parquet(result.path)
    assert result.parse_rate == 1.0 and result.asked == 3
    for row in frame.itertuples():
        assert len(row.step2.splitlines()) == 5 and row.response.startswith("Step 1: ")
        assert row.model.startswith("vllm:")
    again = teach(data, tmp_path / "r.parquet", config, n_users=3, cache=cache, progress=False)
    assert again.asked == 0 and again.cached == 3


def test_an_interpreter_without_ray_data_llm_fails_in_one_line_before_ray_starts(tmp_path):
    engine = VLLMBackend("smollm2-135m", python="/bin/false")  # imports nothing
    engine.check = lambda: None  # as if this interpreter imported vLLM
    requests = {0: [ChatRequest("user 0", [{"role": "user", "content": "hi"}])]}
    with pytest.raises(LLMError, match=r"ray\.data\.llm cannot be imported") as error:
        list(generate_shards(requests, engine, SamplingConfig(), RayConfig(replicas=1)))
    assert "scripts/vllm-env.sh" in error.value.one_line()
    assert "\n" not in error.value.one_line()


def test_vllm_gets_the_sampling_it_can_honour_and_refuses_the_rest():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    params = vllm_sampling(SamplingConfig(max_new_tokens=9, response_schema=schema, seed=3))
    assert params == {
        "max_tokens": 9,
        "temperature": 0.0,
        "top_p": 1.0,
        "seed": 3,
        "structured_outputs": {"json": json.dumps(schema)},
    }
    with pytest.raises(LLMError, match="vllm"):
        vllm_sampling(SamplingConfig(response_pattern="[a-z]+"))
