"""serve-llm end to end: uvicorn on 127.0.0.1, the tiny model, the official openai SDK."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from openai import OpenAI

from slimrec.llm.backends.hf import HFBackend
from slimrec.serve.llm_server import create_app

PROMPTS = [
    "Pens",
    "A user has purchased the following products, oldest first: pens, paper, staplers.",
    "Step 1: The user likes office supplies.",
    "Notebooks: Moleskine, Rhodia. Step 2: 1. Pens 2. Notebooks 3. Staplers",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def client(url: str, key: str = "x") -> OpenAI:
    return OpenAI(base_url=url, api_key=key, max_retries=0, timeout=60)


def ask(c: OpenAI, model: str, prompt: str, **kw):
    return c.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=kw.pop("max_tokens", 6),
        temperature=kw.pop("temperature", 0),
        **kw,
    )


def test_lists_the_served_model(llm_server, llm_server_model):
    models = client(llm_server).models.list()
    assert [m.id for m in models.data] == [llm_server_model]
    assert client(llm_server).models.retrieve(llm_server_model).id == llm_server_model


def test_completion_with_usage(llm_server, llm_server_model, lively_lm):
    r = ask(client(llm_server), llm_server_model, PROMPTS[1], max_tokens=5)
    assert r.object == "chat.completion" and r.model == llm_server_model and r.id
    choice = r.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert choice.finish_reason in {"stop", "length"} and choice.message.content
    # Same numbers as the backend gives directly.
    from slimrec.llm.backends.base import ChatRequest, SamplingConfig

    direct = dict(
        HFBackend(str(lively_lm), progress=False).generate(
            [ChatRequest("u", [{"role": "user", "content": PROMPTS[1]}])],
            SamplingConfig(max_new_tokens=5),
        )
    )[0]
    assert choice.message.content == direct.text
    assert r.usage.prompt_tokens == direct.prompt_tokens > 10
    assert r.usage.completion_tokens == direct.completion_tokens <= 5
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    # max_completion_tokens is the newer name of the cap.
    r2 = client(llm_server).chat.completions.create(
        model=llm_server_model,
        messages=[{"role": "user", "content": PROMPTS[1]}],
        max_completion_tokens=2,
        temperature=0,
    )
    assert r2.usage.completion_tokens <= 2 and r2.choices[0].finish_reason == "length"


def test_concurrent_requests_are_batched_and_answer_like_sequential(lively_lm, serve_app):
    backend = HFBackend(str(lively_lm), batch_size=8, progress=False)
    # A generous window so the 4 concurrent requests surely meet in one batch.
    app = create_app(backend, model_name="m", batch_wait_s=0.5)
    with serve_app(app) as url:
        c = client(url)
        sequential = [ask(c, "m", p).choices[0].message.content for p in PROMPTS]
        sizes_before = list(app.state.batcher.batch_sizes)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda p: ask(c, "m", p), PROMPTS))
        batched = app.state.batcher.batch_sizes[len(sizes_before) :]
    assert sizes_before == [1, 1, 1, 1]
    assert max(batched) > 1 and sum(batched) == 4
    assert [a.choices[0].message.content for a in answers] == sequential
    assert len(set(sequential)) > 1


def test_mixed_sampling_settings_are_not_batched_together(lively_lm, serve_app):
    backend = HFBackend(str(lively_lm), batch_size=8, progress=False)
    app = create_app(backend, model_name="m", batch_wait_s=0.3)
    with serve_app(app) as url:
        c = client(url)
        hot = ask(c, "m", PROMPTS[0], temperature=1.5, seed=3, max_tokens=8)
        with ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(ask, c, "m", p) for p in PROMPTS[:2]]
            futs += [pool.submit(ask, c, "m", PROMPTS[0], temperature=1.5, seed=3, max_tokens=8)]
            results = [f.result() for f in futs]
        sizes = app.state.batcher.batch_sizes[1:]
    assert sorted(sizes) == [1, 2]
    assert results[2].choices[0].message.content == hot.choices[0].message.content


@pytest.mark.parametrize(
    "change, status, needle",
    [
        ({"n": 2}, 400, "n=1"),
        ({"stream": True}, 400, "stream"),
        ({"temperature": 3}, 400, "temperature"),
        ({"messages": []}, 400, "messages"),
        ({"model": "gpt-4o"}, 404, "not found"),
        ({"response_format": {"type": "json_schema"}}, 400, "json_schema"),
        # the tiny model is served by transformers, which has no grammar: said, not ignored
        ({"response_format": {"type": "json_object"}}, 400, "structured output"),
    ],
)
def test_bad_requests_get_openai_style_errors(llm_server, llm_server_model, change, status, needle):
    body = {"model": llm_server_model, "messages": [{"role": "user", "content": "hi"}]}
    body |= change
    r = httpx.post(f"{llm_server}/chat/completions", json=body, timeout=30)
    assert r.status_code == status
    err = r.json()["error"]
    assert needle in err["message"] + str(err.get("param")) and err["type"]


def test_sdk_raises_on_unknown_model(llm_server):
    with pytest.raises(openai.NotFoundError):
        ask(client(llm_server), "no-such-model", "hi")


def test_too_long_prompt_fails_alone(llm_server, llm_server_model):
    c = client(llm_server)
    with ThreadPoolExecutor(2) as pool:
        bad = pool.submit(ask, c, llm_server_model, "Pens " * 2000)
        good = pool.submit(ask, c, llm_server_model, PROMPTS[0])
        with pytest.raises(openai.BadRequestError, match="context"):
            bad.result()
        assert good.result().choices[0].message.content


def test_bearer_auth_when_the_key_is_set(lively_lm, serve_app, monkeypatch):
    monkeypatch.setenv("SLIMREC_API_KEY", "s3cret")
    app = create_app(HFBackend(str(lively_lm), progress=False), model_name="m")
    with serve_app(app) as url:
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong").models.list()
        r = httpx.get(f"{url}/models", timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert ask(client(url, key="s3cret"), "m", "hi").choices[0].message.content
