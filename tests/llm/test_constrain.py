"""Answers held to a pattern in slimrec's decoder, on the tiny real Llama (llm/constrain.py)."""

from __future__ import annotations

import pytest
import regex
from pydantic import ValidationError

from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.hf import HFBackend
from slimrec.llm.constrain import tokenizer_filter

# Two list lines that differ, after a one-line summary: backreference and lookahead, which
# the engines' grammars cannot express. A second word keeps a copy of a six-letter first
# line from being a dead end (no token may follow it, and the row would end unfinished).
PATTERN = r"Summary: [a-z ]{1,12}\n- (?P<a>[a-z]{1,6})\n- (?!(?P=a)\n)[a-z]{1,6}(?: [a-z]{1,6})?\n"
TEXTS = [
    "Pens",
    "A user has purchased the following products, oldest first: pens, paper, staplers.",
    "Step 1: The user likes office supplies.",
    "Notebooks: Moleskine",
    "Reason step by step and answer in exactly three parts.",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def backend(lively_lm) -> HFBackend:
    hf = HFBackend(str(lively_lm), batch_size=3, progress=False)
    hf.check()
    return hf


def answers(backend: HFBackend, sampling: SamplingConfig) -> list:
    reqs = [ChatRequest(f"r{i}", [{"role": "user", "content": t}]) for i, t in enumerate(TEXTS)]
    got = dict(backend.generate(reqs, sampling))
    return [got[i] for i in range(len(reqs))]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_every_answer_is_a_whole_match_ended_by_the_model(backend, temperature):
    free = answers(backend, SamplingConfig(max_new_tokens=60, temperature=temperature))
    assert not any(regex.fullmatch(PATTERN, a.text) for a in free)  # the model alone does not
    sampling = SamplingConfig(max_new_tokens=60, temperature=temperature, response_pattern=PATTERN)
    for answer in answers(backend, sampling):
        match = regex.fullmatch(PATTERN, answer.text)
        assert match and answer.finish_reason == "stop", answer.text
        first, second = answer.text.splitlines()[1:3]
        assert first != second


def test_greedy_rows_follow_the_free_answer_until_it_leaves_the_pattern(backend):
    loose = r"[^\n]{1,400}"  # admits whatever one line the free model writes
    free = answers(backend, SamplingConfig(max_new_tokens=30))
    held = answers(backend, SamplingConfig(max_new_tokens=30, response_pattern=loose))
    for f, h in zip(free, held, strict=True):
        cut = f.text.find("\n")
        same = f.text if cut < 0 else f.text[:cut]
        assert h.text.startswith(same[: max(0, len(same) - 4)])  # bytes of a split token aside


def test_a_pattern_nothing_meets_ends_each_row_at_once_unfinished(backend):
    for answer in answers(backend, SamplingConfig(max_new_tokens=20, response_pattern="(?!)")):
        assert answer.text == "" and answer.finish_reason == "length"


def test_special_tokens_never_enter_an_answer_and_stops_wait_for_a_whole_match(backend):
    tok = backend._tokenizer
    allow = tokenizer_filter(".{0,50}", tok, backend._stop_ids)
    start = tok.convert_tokens_to_ids("<|im_start|>")
    end = tok.convert_tokens_to_ids("<|im_end|>")
    a = tok("a", add_special_tokens=False)["input_ids"]
    assert not allow(a, start) and allow(a, a[0])
    assert allow(a, end)  # a stop: "a" is a whole match of .{0,50}
    strict = tokenizer_filter("ab", tok, backend._stop_ids)
    assert not strict(a, end)


def test_a_pattern_that_does_not_compile_is_refused_with_the_field():
    with pytest.raises(ValidationError, match="not a valid regular expression") as error:
        SamplingConfig(response_pattern="(unclosed")
    assert error.value.errors()[0]["loc"] == ("response_pattern",)


def test_an_unset_pattern_leaves_cache_keys_as_they_were():
    assert "response_pattern" not in SamplingConfig().model_dump()
    assert SamplingConfig(response_pattern="a").model_dump()["response_pattern"] == "a"
