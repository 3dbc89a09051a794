"""The OpenAI-compatible backend against a real, misbehaving HTTP server (fault_server.py)."""

from __future__ import annotations

import socket
import time

import pytest
from tests.llm.fault_server import MODEL, FaultServer, Reply, answer, error, user_text

from slimrec.errors import SlimrecError
from slimrec.llm.backends import build_backend
from slimrec.llm.backends.base import ChatRequest, LLMError, SamplingConfig
from slimrec.llm.backends.openai_backend import OpenAIBackend
from slimrec.methods.slim.teach import TeacherConfig

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "timeout_s": 5.0}


def backend(server: FaultServer, **kwargs) -> OpenAIBackend:
    return OpenAIBackend(MODEL, base_url=server.url, **(FAST | kwargs))


def requests(*texts: str) -> list[ChatRequest]:
    return [
        ChatRequest(key=f"user {i}", messages=[{"role": "user", "content": t}])
        for i, t in enumerate(texts)
    ]


def scripted(script: dict[str, list[Reply]]):
    """Per prompt, the replies of attempts 1, 2, ...; then (or otherwise) an answer."""

    def behaviour(body: dict, attempt: int) -> Reply:
        replies = script.get(user_text(body), [])
        return replies[attempt - 1] if attempt <= len(replies) else answer(f"answer {attempt}")

    return behaviour


def test_answers_arrive_as_completed_with_tokens_and_settings():
    slow = {"slow": [Reply(delay_s=2.0, body=answer("slow one").body)]}
    with FaultServer(scripted(slow)) as server:
        llm = backend(server)
        llm.check()
        got = list(llm.generate(requests("slow", "a", "b"), SamplingConfig(max_new_tokens=77)))
    assert [i for i, _ in got][-1] == 0  # the slow request came last, not first
    by_index = dict(got)
    assert by_index[0].text == "slow one" and by_index[1].text == "answer 1"
    assert by_index[1].prompt_tokens == 50 and by_index[1].completion_tokens == 30
    assert by_index[1].model == MODEL and by_index[1].finish_reason == "stop"
    body = server.requests[0]
    assert body["model"] == MODEL and body["max_tokens"] == 77
    assert body["temperature"] == 0.0 and body["seed"] == 0
    assert server.model_list_calls == 1


def test_concurrency_is_bounded():
    def behaviour(body, attempt):
        return Reply(delay_s=0.15, body=answer().body)

    with FaultServer(behaviour) as server:
        got = list(backend(server, concurrency=3).generate(requests(*"abcdefgh"), SamplingConfig()))
    assert len(got) == 8 and server.max_in_flight == 3


@pytest.mark.parametrize(
    ("first", "cause"),
    [
        (error(500, "boom"), "server error 500"),
        (error(503, "overloaded"), "server error 503"),
        (Reply(body=b"<html>502 Bad Gateway</html>"), "unparseable"),
        (Reply(body={"choices": []}), "unparseable"),
        # Held until the server closes: only the client's timeout ends it, never the clock.
        (Reply(delay_s=600.0, body=answer().body), "no answer within"),
    ],
)
def test_transient_failures_are_retried_then_succeed(first, cause, caplog):
    with FaultServer(scripted({"x": [first, first]})) as server:
        # 3 s: a prompt answer still arrives in time on a machine busy with other work.
        llm = backend(server, timeout_s=3.0)
        with caplog.at_level("INFO"):
            got = list(llm.generate(requests("x"), SamplingConfig()))
    assert [(i, c.text) for i, c in got] == [(0, "answer 3")]
    assert server.attempts["x"] == 3 and llm.retries == 2
    assert cause in caplog.text


def test_rate_limit_honours_retry_after(caplog):
    limited = {"x": [error(429, "slow down", retry_after="1")]}
    with FaultServer(scripted(limited)) as server, caplog.at_level("WARNING"):
        start = time.perf_counter()
        got = list(backend(server).generate(requests("x"), SamplingConfig()))
        elapsed = time.perf_counter() - start
    # The wait is shown (a warning reaches the CLI's stderr without any logging set-up).
    assert "rate limited (429)" in caplog.text and "retry 1 in 1.0 s" in caplog.text
    assert got[0][1].text == "answer 2" and server.attempts["x"] == 2
    # The server's 1 s, not the 0.01 s backoff (a lower bound only: a busy machine may
    # take longer, never shorter).
    assert elapsed >= 1.0


def test_backoff_is_exponential_with_jitter_and_capped():
    llm = OpenAIBackend("m", base_url="http://127.0.0.1:1/v1", backoff_base_s=1, backoff_max_s=8)
    for attempt, step in enumerate([1, 2, 4, 8, 8]):
        delays = [llm._backoff(attempt, None) for _ in range(200)]
        assert step / 2 <= min(delays) and max(delays) <= step
        assert len(set(delays)) > 100  # jitter: retries of many requests spread out
    assert llm._backoff(0, 7.5) == 7.5


def test_failure_for_good_names_the_request_after_yielding_the_rest():
    always_500 = {"bad": [error(500, "model crashed")] * 10}
    with FaultServer(scripted(always_500)) as server:
        llm = backend(server, max_retries=2, concurrency=2)
        received = []
        with pytest.raises(LLMError) as info:
            for index, _completion in llm.generate(
                requests("a", "bad", "b", "c"), SamplingConfig()
            ):
                received.append(index)
    message = str(info.value)
    assert "user 1" in message and "3 attempts" in message and "server error 500" in message
    assert "model crashed" in message and server.url in message
    assert server.attempts["bad"] == 3
    assert 1 not in received and {0} <= set(received)  # what succeeded first was yielded


def test_client_errors_fail_at_once():
    rejected = r"user 0.*rejected.*\(400\): unknown model"
    with (
        FaultServer(scripted({"x": [error(400, "unknown model")] * 5})) as server,
        pytest.raises(LLMError, match=rejected),
    ):
        list(backend(server).generate(requests("x"), SamplingConfig()))
    assert server.attempts["x"] == 1


def test_endpoint_that_is_not_there_fails_fast_naming_it():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    llm = OpenAIBackend("m", base_url=url, max_retries=5)
    with pytest.raises(LLMError, match=rf"{url}: endpoint unreachable.*fix:"):
        llm.check()
    assert llm.retries == 0  # fails at the first attempt, not after five backoffs


def test_credentials_in_the_url_never_reach_errors_or_dumps(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://bob:hunter2@127.0.0.1:{port}/v1?api-key=SECRET42&deployment=d1"
    with pytest.raises(LLMError) as info:
        OpenAIBackend("m", base_url=url).check()
    shown = str(info.value)
    assert "hunter2" not in shown and "SECRET42" not in shown
    assert f"http://bob:***@127.0.0.1:{port}/v1?api-key=***&deployment=d1" in shown
    config = TeacherConfig(backend="openai", model="m", base_url=url)
    assert config.base_url == url  # the requests still use the real one
    from slimrec.config import save_yaml

    save_yaml(config, tmp_path / "teacher.yaml")
    saved = (tmp_path / "teacher.yaml").read_text()
    assert "hunter2" not in saved and "SECRET42" not in saved and "deployment=d1" in saved
    assert "hunter2" not in str(config.model_dump()) and "SECRET42" not in str(config.model_dump())


def test_api_key_comes_from_the_named_variable_and_is_never_shown(monkeypatch):
    secret = "sk-test-very-secret-123"
    monkeypatch.setenv("MY_TEACHER_KEY", secret)
    with FaultServer(scripted({"x": [error(401, "invalid key")]})) as server:
        llm = backend(server, api_key_env="MY_TEACHER_KEY")
        with pytest.raises(LLMError) as info:
            list(llm.generate(requests("x"), SamplingConfig()))
    assert server.auth_headers == [f"Bearer {secret}"]
    assert secret not in str(info.value) and "MY_TEACHER_KEY" in str(info.value)
    assert secret not in repr(vars(llm))


@pytest.mark.parametrize("where", ["error body", "unparseable body"])
def test_a_server_that_echoes_the_key_never_gets_it_into_an_error_line(monkeypatch, where):
    secret = "sk-echoed-secret-456"
    monkeypatch.setenv("ECHO_KEY", secret)
    box: dict[str, FaultServer] = {}

    def echo(body: dict, attempt: int) -> Reply:
        # What a misconfigured proxy does: repeat the request's headers, colours and all,
        # here after enough text that a cap of 80 or 200 characters would split the key.
        pad = "x" * (160 if where == "error body" else 42)
        said = f"{pad}\x1b[31mgot Authorization: {box['server'].auth_headers[-1]}\x1b[0m"
        return error(500, said) if where == "error body" else Reply(body=said.encode())

    with FaultServer(echo) as server:
        box["server"] = server
        llm = backend(server, api_key_env="ECHO_KEY", max_retries=1)
        with pytest.raises(LLMError) as info:
            list(llm.generate(requests("x"), SamplingConfig()))
    message = str(info.value)
    assert server.auth_headers[-1] == f"Bearer {secret}"  # the server did get it
    assert secret[:6] not in message and "\x1b" not in message


def test_a_model_list_without_models_is_not_a_crash():
    with FaultServer() as server:
        server.models_reply = Reply(body={"object": "list", "data": None})
        backend(server).check()  # some servers answer /models without a list
        got = list(backend(server).generate(requests("x"), SamplingConfig()))
    assert len(got) == 1 and got[0][1].text.startswith("Step 1")


def test_missing_key_for_a_remote_endpoint_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    llm = OpenAIBackend("gpt-4o-mini", api_key_env="NO_SUCH_KEY_VAR")
    with pytest.raises(LLMError, match="NO_SUCH_KEY_VAR is not set"):
        llm.check()


def test_registry_builds_the_openai_backend_from_config():
    config = TeacherConfig(backend="openai", model="m", base_url="http://127.0.0.1:9/v1/")
    llm = build_backend(config)
    assert isinstance(llm, OpenAIBackend)
    assert llm.model_id == "m" and llm.max_retries == config.max_retries
    with pytest.raises(LLMError, match="not an http"):
        build_backend(config.model_copy(update={"base_url": "127.0.0.1:9"}))


@pytest.mark.parametrize(
    ("name", "value"), [("no_repeat_ngram", 8), ("response_pattern", "Step 1: .*")]
)
def test_settings_of_slimrecs_own_decoder_are_refused_before_any_request(name, value):
    llm = OpenAIBackend("m", base_url="http://127.0.0.1:1/v1")
    request = ChatRequest("user 1", [{"role": "user", "content": "hi"}])
    with pytest.raises(SlimrecError, match=f"{name} is not offered by the openai"):
        list(llm.generate([request], SamplingConfig(**{name: value})))


def test_an_unset_base_url_comes_from_openai_base_url(monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    assert OpenAIBackend("m").base_url == "http://127.0.0.1:9/v1"
    assert OpenAIBackend("m", base_url="http://127.0.0.1:8/v1").base_url.endswith(":8/v1")
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert OpenAIBackend("m").base_url == "https://api.openai.com/v1"
