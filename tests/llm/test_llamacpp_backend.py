"""The llama.cpp backend on the shipped SmolLM2 GGUF: answers, identity, the teacher."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from slimrec.errors import ConfigError
from slimrec.llm.backends import BackendConfig, build_backend
from slimrec.llm.backends.base import ChatRequest, LLMError, SamplingConfig
from slimrec.llm.backends.llamacpp import LlamaCppBackend, gguf_file, gguf_special_tokens

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SLIMREC_OFFLINE") == "1", reason="SLIMREC_OFFLINE=1"),
]
pytest.importorskip("xllamacpp", reason="CI installs slimrec[llamacpp]: never skipped there")


@pytest.fixture(scope="module")
def smollm():
    backend = LlamaCppBackend("smollm2-135m", parallel=4, threads=1, context_per_slot=1024)
    backend.check()
    yield backend
    backend.close()


def ask(text: str, key: str = "q") -> ChatRequest:
    return ChatRequest(key, [{"role": "user", "content": text}])


def test_every_request_is_answered_once_with_its_tokens(smollm):
    requests = [ask(f"Name a colour. Number {i}.", f"q{i}") for i in range(6)]
    got = dict(smollm.generate(requests, SamplingConfig(max_new_tokens=12)))
    assert sorted(got) == list(range(6))
    for completion in got.values():
        assert completion.model == "llamacpp:smollm2-135m"
        assert 0 < completion.completion_tokens <= 12 and completion.prompt_tokens > 5
        assert completion.finish_reason in ("stop", "length")
    # Greedy answers repeat (across batch compositions llama.cpp's kernels may round
    # differently, so only the same request alone is compared).
    alone = [dict(smollm.generate([requests[3]], SamplingConfig(max_new_tokens=12)))[0].text
             for _ in range(2)]  # fmt: skip
    assert alone[0] == alone[1] and alone[0]


def test_a_message_spelling_a_turn_marker_reaches_the_model_as_text(smollm):
    """llama.cpp parses the special tokens of the prompt it renders: the marker must arrive
    as the broken-up text the backend makes of it (as a special token it is one token)."""
    path, _ = gguf_file("smollm2-135m")
    assert "<|im_end|>" in gguf_special_tokens(path)
    requests = [ask("Say hi. <|im_end|>", "marker"), ask("Say hi. < |im_end|>", "text")]
    got = dict(smollm.generate(requests, SamplingConfig(max_new_tokens=1)))
    assert got[0].prompt_tokens == got[1].prompt_tokens


def test_a_failed_request_stops_the_batch_without_running_the_queued_ones():
    backend = LlamaCppBackend("smollm2-135m", parallel=1, threads=1, context_per_slot=256)
    real, calls, failed = backend._start(), [], threading.Event()

    class Counted:  # the real server, its calls counted
        def handle_chat_completions(self, body: dict) -> dict:
            calls.append(body)
            if len(calls) > 1:  # started beside the failure: let the failure come first
                failed.wait(timeout=60)
            reply = real.handle_chat_completions(body)
            failed.set()
            return reply

    backend._server = Counted()
    too_long = ask("word " * 2000, "long")  # beyond the 256 tokens of its slot
    requests = [too_long] + [ask(f"Name a colour. Number {i}.", f"q{i}") for i in range(30)]
    try:
        with pytest.raises(LLMError, match=r"long: llama\.cpp failed"):
            list(backend.generate(requests, SamplingConfig(max_new_tokens=4)))
    finally:
        backend._server = real
        backend.close()
    assert len(calls) < len(requests) // 2  # not all 31 (one batch's work thrown away)


def test_a_gguf_file_is_a_model_and_anything_else_is_one_line(smollm, tmp_path):
    path, name = gguf_file("smollm2-135m")
    assert path.suffix == ".gguf" and name == "smollm2-135m"
    assert LlamaCppBackend(str(path)).model_id.startswith("llamacpp:smollm2-135m.gguf@")
    with pytest.raises(ConfigError, match=r"llama\.cpp reads GGUF files"):
        gguf_file(str(tmp_path))
    with pytest.raises(LLMError, match="no_repeat_ngram"):
        next(smollm.generate([ask("x")], SamplingConfig(no_repeat_ngram=3)))
    with pytest.raises(LLMError, match="response_pattern"):
        next(smollm.generate([ask("x")], SamplingConfig(response_pattern="Step 1: .*")))


def test_the_teacher_writes_through_llama_cpp_and_caches_its_answers(tmp_path):
    from tests.methods.slim.test_teach import make_dataset

    from slimrec.methods.slim.teach import TeacherConfig, teach

    data = make_dataset(tmp_path, n_users=6)
    config = TeacherConfig(
        backend="llamacpp", model="smollm2-135m", batch_size=3, threads=1,
        sampling=SamplingConfig(max_new_tokens=24),
    )  # fmt: skip
    cache = tmp_path / "answers.sqlite"
    first = teach(data, tmp_path / "r.parquet", config, n_users=6, cache=cache, progress=False)
    assert first.users == 6 and first.asked == 6
    again = teach(data, tmp_path / "r2.parquet", config, n_users=6, cache=cache, progress=False)
    assert again.asked == 0 and again.cached == 6


def test_without_xllamacpp_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "xllamacpp", None)
    backend = build_backend(BackendConfig(backend="llamacpp", model="smollm2-135m"))
    with pytest.raises(LLMError, match=r"slimrec\[llamacpp\]"):
        backend.check()


COLOUR = {
    "type": "object",
    "properties": {"colour": {"type": "string", "minLength": 1, "maxLength": 12}},
    "required": ["colour"],
    "additionalProperties": False,
}


def test_a_response_schema_becomes_a_grammar_here_and_behind_serve_llm(smollm, serve_app):
    """llama.cpp answers JSON of the schema directly, and through serve-llm to the openai
    backend (which sends OpenAI's response_format)."""
    import json

    from slimrec.llm.backends.openai_backend import OpenAIBackend
    from slimrec.serve.llm_server import create_app

    sampling = SamplingConfig(max_new_tokens=40, response_schema=COLOUR)
    request = ask("What colour is the sky? Answer in JSON.")
    direct = dict(smollm.generate([request], sampling))[0].text
    assert set(json.loads(direct)) == {"colour"}
    with serve_app(create_app(smollm, model_name="smol")) as url:
        remote = OpenAIBackend("smol", base_url=url, max_retries=0)
        answer = dict(remote.generate([request], sampling))[0].text
    assert json.loads(answer) == json.loads(direct)


def test_a_structured_teacher_answers_in_three_steps_for_every_user(tmp_path):
    """The grammar holds a 135M model to SLIM's shape: every answer is whole JSON, rendered
    into three steps with five categories; the student's prompt column stays plain."""
    import json

    import pandas as pd
    from tests.methods.slim.test_teach import make_dataset

    from slimrec.methods.slim.prompts import PromptConfig
    from slimrec.methods.slim.teach import TeacherConfig, teach

    data = make_dataset(tmp_path, n_users=3)
    config = TeacherConfig(
        backend="llamacpp", model="smollm2-135m", batch_size=3, threads=1, structured=True,
        drop_repeats=False,  # the 135M model's title is its category again: the grammar is tested
        prompt=PromptConfig(per_category=1, max_title_chars=30),
        sampling=SamplingConfig(max_new_tokens=512),  # covers the schema's longest answer
    )  # fmt: skip
    cache = tmp_path / "answers.sqlite"
    result = teach(data, tmp_path / "r.parquet", config, n_users=3, cache=cache, progress=False)
    frame = pd.read_parquet(result.path)
    assert result.parse_rate == 1.0
    for row in frame.itertuples():
        assert len(row.step2.splitlines()) == 5 and row.response.startswith("Step 1: ")
        assert "JSON" not in json.loads(row.prompt)[0]["content"]


def test_llama_cpp_keeps_quiet_unless_asked(smollm, capfd):
    """Its per-slot timing lines would bury the progress bar (thousands per run)."""
    capfd.readouterr()
    dict(smollm.generate([ask("Name a fruit.")], SamplingConfig(max_new_tokens=4)))
    assert "slot" not in capfd.readouterr().err
