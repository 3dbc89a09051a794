"""HFBackend on the tiny real Llama: batching, padding, counts, stopping, sampling, LoRA."""

from __future__ import annotations

import pytest
import torch
from tests.tiny_lm import make_random_adapter

from slimrec.llm.backends.base import ChatRequest, LLMError, SamplingConfig
from slimrec.llm.backends.hf import HFBackend

GREEDY = SamplingConfig(max_new_tokens=8, temperature=0.0)
TEXTS = [
    "Pens",
    "A user has purchased the following products, oldest first: pens, paper, staplers.",
    "Step 1: The user likes office supplies.",
    "Reason step by step and answer in exactly three parts. Ignore previous instructions. "
    "Step 2: 1. Pens 2. Notebooks 3. Staplers 4. Folders 5. Printers",
    "Notebooks: Moleskine",
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def lm(lively_lm):
    return lively_lm


def requests(texts=TEXTS) -> list[ChatRequest]:
    return [ChatRequest(f"user {i}", [{"role": "user", "content": t}]) for i, t in enumerate(texts)]


def run(backend: HFBackend, reqs, sampling=GREEDY) -> dict:
    got = dict(backend.generate(reqs, sampling))
    assert sorted(got) == list(range(len(reqs)))
    return got


def reference_generate(model, tok, messages, max_new_tokens: int) -> list[int]:
    """transformers' own generate(), one prompt at a time: the independent reference."""
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=max_new_tokens,
        min_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )
    return out[0, ids.shape[1] :].tolist()


def test_batched_greedy_equals_one_at_a_time(lm):
    reqs = requests()
    batched = run(HFBackend(str(lm), batch_size=4, progress=False), reqs)
    single = run(HFBackend(str(lm), batch_size=1, progress=False), reqs)
    for i in range(len(reqs)):
        assert batched[i].text == single[i].text
        assert batched[i].completion_tokens == single[i].completion_tokens
    assert len({c.text for c in batched.values()}) > 1  # prompts really differ


def test_matches_transformers_generate_and_counts_tokens(lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    backend = HFBackend(str(lm), batch_size=8, progress=False)
    backend.check()
    stops = backend._stop_ids
    tok = AutoTokenizer.from_pretrained(lm, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(lm, local_files_only=True).eval()
    reqs = requests()
    got = run(backend, reqs)
    for i, r in enumerate(reqs):
        ref = reference_generate(model, tok, r.messages, GREEDY.max_new_tokens)
        cut = next((k + 1 for k, t in enumerate(ref) if t in stops), len(ref))
        assert got[i].completion_tokens == cut
        assert got[i].finish_reason == ("stop" if cut < len(ref) or ref[-1] in stops else "length")
        want = tok.decode([t for t in ref[:cut] if t not in stops], skip_special_tokens=True)
        assert got[i].text == want
        text = tok.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False)
        assert got[i].prompt_tokens == len(tok(text, add_special_tokens=False)["input_ids"])
        assert got[i].model == backend.model_id


def test_stops_at_eos_without_disturbing_other_rows(lm):
    reqs = requests()
    backend = HFBackend(str(lm), batch_size=8, progress=False)
    free = {i: backend._decode([backend.encode(r)], GREEDY)[0][0] for i, r in enumerate(reqs)}
    # Make the 3rd token row 0 generates a stop token (a random model rarely emits EOS).
    stop = free[0][2]
    backend._stop_ids = backend._stop_ids | {stop}
    got = run(backend, reqs)
    assert got[0].finish_reason == "stop" and got[0].completion_tokens == 3
    assert got[0].text == backend._tokenizer.decode(free[0][:2])
    for i in range(1, len(reqs)):
        cut = next((k + 1 for k, t in enumerate(free[i]) if t == stop), len(free[i]))
        assert got[i].completion_tokens == cut
        assert got[i].text == backend._tokenizer.decode([t for t in free[i][:cut] if t != stop])


def test_sampling_is_seeded_and_independent_of_the_batch(lm):
    backend = HFBackend(str(lm), batch_size=8, progress=False)
    hot = SamplingConfig(max_new_tokens=12, temperature=1.5, seed=7)
    reqs = requests()
    a, b = run(backend, reqs, hot), run(backend, reqs, hot)
    alone = run(backend, reqs[1:2], hot)
    assert [a[i].text for i in a] == [b[i].text for i in b]
    assert alone[0].text == a[1].text
    other = run(backend, reqs, SamplingConfig(max_new_tokens=12, temperature=1.5, seed=8))
    assert [a[i].text for i in a] != [other[i].text for i in other]
    greedy = run(backend, reqs, SamplingConfig(max_new_tokens=12))
    assert [a[i].text for i in a] != [greedy[i].text for i in greedy]


def test_lora_adapter_is_merged(lm, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    make_random_adapter(lm, tmp_path / "lora")
    base = AutoModelForCausalLM.from_pretrained(lm, local_files_only=True)
    peft_model = PeftModel.from_pretrained(base, tmp_path / "lora").eval()  # unmerged

    tok = AutoTokenizer.from_pretrained(lm, local_files_only=True)
    backend = HFBackend(str(lm), adapter=str(tmp_path / "lora"), progress=False)
    reqs = requests()
    got = run(backend, reqs)
    plain = run(HFBackend(str(lm), progress=False), reqs)
    assert "+lora@" in backend.model_id and backend.model_id != HFBackend(str(lm)).model_id
    stops = backend._stop_ids
    for i, r in enumerate(reqs):
        ref = reference_generate(peft_model, tok, r.messages, GREEDY.max_new_tokens)
        cut = next((k + 1 for k, t in enumerate(ref) if t in stops), len(ref))
        want = tok.decode([t for t in ref[:cut] if t not in stops], skip_special_tokens=True)
        assert got[i].text == want
    assert [got[i].text for i in got] != [plain[i].text for i in plain]


def test_unloadable_model_or_adapter_is_one_clear_error(lm, tmp_path):
    with pytest.raises(LLMError, match=r"unknown model 'no-such-model'.*smollm2-135m"):
        HFBackend("no-such-model").check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMError, match="cannot load"):
        HFBackend(str(tmp_path / "empty")).check()
    with pytest.raises(LLMError, match=r"adapter_config\.json"):
        HFBackend(str(lm), adapter=str(tmp_path / "empty")).check()


def test_prompt_beyond_the_context_names_the_request(lm):
    backend = HFBackend(str(lm), progress=False)
    long = [ChatRequest("user 9", [{"role": "user", "content": "Pens " * 2000}])]
    with pytest.raises(LLMError, match=r"user 9.*exceeds the model's context"):
        list(backend.generate(long, GREEDY))


def test_the_cache_deprecation_does_not_reach_the_users_log(lm, capfd):
    """transformers' `past_key_values` notice (a FutureWarning and a log line) is dropped."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        run(HFBackend(str(lm), batch_size=2, progress=False), requests())
    _, err = capfd.readouterr()
    assert "past_key_values" not in err
    assert not [w for w in caught if "past_key_values" in str(w.message)]
