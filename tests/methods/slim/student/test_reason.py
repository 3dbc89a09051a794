"""``slimrec reason`` on the tiny real Llama: columns, resume, leakage, adapter, exactness."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.tiny_lm import make_random_adapter, make_tiny_lm

from slimrec.cli import main
from slimrec.data import PrepareConfig, PreparedDataset, prepare
from slimrec.data.loaders import DataSource, load_dataset
from slimrec.llm.backends.base import ChatRequest, SamplingConfig
from slimrec.llm.backends.hf import HFBackend, _pick
from slimrec.llm.decode import common_prefix_length, decode
from slimrec.methods.slim.student.reason import ReasonConfig, reason, shard_dir
from slimrec.methods.slim.teach import COLUMNS, rationale_row, user_prompts

TOKENS = 10


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """A prepared dataset of 11 users, built from CSV files like a user would."""
    folder = tmp_path_factory.mktemp("reason-data")
    rng = np.random.default_rng(3)
    rows = [(f"u{u}", f"i{rng.integers(20)}", t) for u in range(11) for t in range(6)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(
        folder / "ratings.csv", index=False
    )
    titles = [f"Title {i:02d} {['pens', 'paper', 'notebooks'][i % 3]}" for i in range(20)]
    pd.DataFrame({"item_id": [f"i{i}" for i in range(20)], "title": titles}).to_csv(
        folder / "items.csv", index=False
    )
    raw = load_dataset(
        DataSource(dataset=str(folder / "ratings.csv"), items=str(folder / "items.csv"))
    )
    return prepare(raw, PrepareConfig(user_core=3, item_core=1)).save(folder / "prepared")


def cfg(lm: Path, **kw) -> ReasonConfig:
    base = {"base_model": str(lm), "batch_size": 3, "shard_size": 4, "threads": 1}
    base["sampling"] = SamplingConfig(max_new_tokens=TOKENS)
    return ReasonConfig(**(base | kw))


class Counting:
    """An HFBackend that counts the prompts it is asked and can fail on its n-th call."""

    def __init__(self, lm: Path, fail_on_call: int | None = None, **kw):
        self.inner = HFBackend(str(lm), batch_size=3, progress=False, **kw)
        self.fail_on_call, self.calls, self.asked = fail_on_call, 0, 0

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    def generate(self, requests, sampling):
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise RuntimeError("killed")
        self.asked += len(requests)
        yield from self.inner.generate(requests, sampling)


def reference(model, tok, ids: list[int], n: int) -> list[int]:
    """transformers' own greedy generate(), one prompt, exactly ``n`` new tokens."""
    x = torch.tensor([ids])
    out = model.generate(
        input_ids=x,
        attention_mask=torch.ones_like(x),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )
    return out[0, len(ids) :].tolist()


@pytest.mark.parametrize(("refill", "share_prefix"), [(True, True), (False, True), (True, False)])
def test_fastgen_equals_plain_generate_token_for_token(lively_lm, data, refill, share_prefix):
    from transformers import AutoModelForCausalLM

    backend = HFBackend(str(lively_lm), progress=False)
    backend.check()
    tok, model = backend._tokenizer, AutoModelForCausalLM.from_pretrained(lively_lm).eval()
    dataset = PreparedDataset.load(data)
    prompts = user_prompts(dataset, range(dataset.n_users), ReasonConfig().prompt)
    ids = [backend.encode(ChatRequest(str(i), p.messages())) for i, p in enumerate(prompts)]
    n = 16
    free = [reference(model, tok, p, n) for p in ids]
    # A stop token that ends the rows at different steps, so rows leave the batch early
    # and (with refill) waiting prompts are merged in with other cache widths.
    counts: dict[int, int] = {}
    for row in free:
        for t in set(row[1:]):
            counts[t] = counts.get(t, 0) + 1
    stop = max(counts, key=lambda t: (min(counts[t], len(free) - counts[t]), -t))
    want = {}
    for i, row in enumerate(free):
        cut = row.index(stop) + 1 if stop in row else n
        want[i] = (row[:cut], stop in row)
    assert len({len(w[0]) for w in want.values()}) > 2
    got, stats = {}, {}
    for i, toks, ended in decode(
        backend._model,
        ids,
        max_new_tokens=n,
        stop_ids={stop},
        pad_id=tok.pad_token_id,
        pick=lambda logits, gens: _pick(logits, SamplingConfig(), gens),
        batch_size=3,
        refill=refill,
        refill_min=1,
        share_prefix=share_prefix,
        stats=stats,
    ):
        assert i not in got
        got[i] = (toks, ended)
    assert got == want
    # The prompts' template opening is computed once when shared, per row otherwise.
    opening = common_prefix_length(ids)
    assert stats["shared_prefix"] == (opening if share_prefix else 0) and opening > 20
    assert stats["prefilled"] == sum(map(len, ids)) - (len(ids) - 1) * stats["shared_prefix"]


def test_no_repeat_ngram_breaks_the_loops_of_greedy_decoding(lively_lm, data):
    backend = HFBackend(str(lively_lm), batch_size=4, progress=False)
    dataset = PreparedDataset.load(data)
    prompts = user_prompts(dataset, range(dataset.n_users), ReasonConfig().prompt)
    ids = [backend.encode(ChatRequest(str(i), p.messages())) for i, p in enumerate(prompts)]

    def answers(n: int) -> list[list[int]]:
        sampling = SamplingConfig(max_new_tokens=40, no_repeat_ngram=n)
        return [toks for toks, _ in backend._decode(ids, sampling)]

    def repeated(toks: list[int], n: int) -> int:
        grams = [tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)]
        return len(grams) - len(set(grams))

    free, held = answers(0), answers(3)
    assert sum(repeated(t, 3) for t in free) > 0  # the tiny model does loop
    assert all(repeated(t, 3) == 0 for t in held)
    # Up to its first would-be repeat, each row is the free answer.
    for f, h in zip(free, held, strict=True):
        first = next((i for i in range(3, len(f) + 1) if repeated(f[:i], 3)), len(f))
        assert h[: first - 1] == f[: first - 1]


def test_shared_prefix_with_identical_and_unrelated_prompts(lively_lm):
    """Identical prompts keep one token of their own; unrelated ones share nothing."""
    backend = HFBackend(str(lively_lm), progress=False)
    backend.check()
    tok = backend._tokenizer
    same = backend.encode(ChatRequest("a", [{"role": "user", "content": "pens and paper " * 4}]))
    unrelated = [[5, 6, 7, 8, 9, 10, 11, 12, 13, 14], [15, 6, 7, 8, 9, 10, 11, 12, 13, 14]]

    def run(prompts, share):
        stats: dict[str, int] = {}
        out = decode(
            backend._model,
            prompts,
            max_new_tokens=6,
            stop_ids=set(),
            pad_id=tok.pad_token_id,
            pick=lambda logits, gens: _pick(logits, SamplingConfig(), gens),
            batch_size=4,
            share_prefix=share,
            stats=stats,
        )
        return sorted(out), stats

    shared, stats = run([same, same], True)
    assert stats["shared_prefix"] == len(same) - 1
    assert shared == run([same, same], False)[0] and shared[0][1] == shared[1][1]
    assert run(unrelated, True)[1]["shared_prefix"] == 0


def test_columns_count_and_same_answers_as_the_backend(lively_lm, data, tmp_path):
    out = tmp_path / "r.parquet"
    result = reason(data, out, cfg(lively_lm), progress=False)
    frame = pd.read_parquet(out)
    n_users = PreparedDataset.load(data).n_users
    assert list(frame.columns) == COLUMNS and len(frame) == n_users
    assert frame["user"].tolist() == list(range(n_users))
    assert result["generated"] == n_users and result["shards"] == 3
    assert result["completion_tokens"] == frame["completion_tokens"].sum() > 0
    backend = HFBackend(str(lively_lm), batch_size=1, progress=False)
    assert set(frame["model"]) == {backend.model_id}
    assert not frame["cached"].any() and frame["response"].nunique() > 1
    # One at a time through the backend gives the same answers.
    reqs = [
        ChatRequest(str(u), json.loads(p))
        for u, p in zip(frame["user"], frame["prompt"], strict=True)
    ]
    alone = dict(backend.generate(reqs, SamplingConfig(max_new_tokens=TOKENS)))
    assert [alone[i].text for i in range(len(reqs))] == frame["response"].tolist()
    assert not list(tmp_path.glob(".r.parquet*"))  # no temporary left behind


def test_failed_run_resumes_with_only_the_missing_shards(lively_lm, data, tmp_path):
    out = tmp_path / "r.parquet"
    first = Counting(lively_lm, fail_on_call=2)
    with pytest.raises(RuntimeError, match="killed"):
        reason(data, out, cfg(lively_lm), backend=first, progress=False)
    assert first.asked == 4 and not out.exists()
    assert sorted(p.name for p in shard_dir(out).glob("shard-*")) == ["shard-00000.parquet"]

    second = Counting(lively_lm)
    result = reason(data, out, cfg(lively_lm), backend=second, progress=False)
    n_users = PreparedDataset.load(data).n_users
    assert second.asked == n_users - 4 == result["generated"]
    frame = pd.read_parquet(out)
    assert frame["cached"].tolist() == [True] * 4 + [False] * (n_users - 4)
    whole = reason(data, tmp_path / "whole.parquet", cfg(lively_lm), progress=False)
    assert whole["generated"] == n_users
    assert pd.read_parquet(tmp_path / "whole.parquet")["response"].equals(frame["response"])

    # Nothing left to do; a changed setting makes every shard stale.
    third = Counting(lively_lm)
    assert reason(data, out, cfg(lively_lm), backend=third, progress=False)["generated"] == 0
    assert third.asked == 0
    longer = cfg(lively_lm, sampling=SamplingConfig(max_new_tokens=TOKENS + 2))
    fourth = Counting(lively_lm)
    assert reason(data, out, longer, backend=fourth, progress=False)["generated"] == n_users


def test_prompts_hold_the_training_history_only(lively_lm, data, tmp_path):
    dataset = PreparedDataset.load(data)
    users = [0, 3, 5, 7]
    reason(data, tmp_path / "r.parquet", cfg(lively_lm, users=users), progress=False)
    frame = pd.read_parquet(tmp_path / "r.parquet")
    assert frame["user"].tolist() == users
    titles = dataset.items.set_index("item")["title"]
    held_out = 0
    for user, prompt in zip(frame["user"], frame["prompt"], strict=True):
        seq = dataset.sequences[user]
        text = json.loads(prompt)[1]["content"]
        block = text.split("<history>\n", 1)[1].split("\n</history>", 1)[0]
        assert block.splitlines() == [f'{k}. "{titles[i]}"' for k, i in enumerate(seq[:-2], 1)]
        for target in seq[-2:]:
            if target not in seq[:-2]:
                assert titles[target] not in text
                held_out += 1
    assert held_out >= 4


def test_adapter_changes_the_answers_and_names_its_base(lively_lm, data, tmp_path):
    adapter = make_random_adapter(lively_lm, tmp_path / "adapter")
    (adapter / "student.json").write_text(json.dumps({"base_model": str(lively_lm)}))

    plain = reason(data, tmp_path / "plain.parquet", cfg(lively_lm), progress=False)
    tuned = reason(
        data,
        tmp_path / "tuned.parquet",
        cfg(lively_lm, base_model=None, adapter=str(adapter)),
        progress=False,
    )
    assert "+lora@" in tuned["model"] and tuned["model"].startswith(plain["model"])
    a = pd.read_parquet(tmp_path / "plain.parquet")["response"]
    b = pd.read_parquet(tmp_path / "tuned.parquet")["response"]
    assert (a != b).sum() >= len(a) // 2


def test_cli_writes_rationales_and_bad_input_is_one_line(lively_lm, data, tmp_path, capsys):
    out = tmp_path / "cli"  # a folder: rationales.parquet goes inside
    args = ["reason", "--data", str(data), "--out", str(out), "--base-model", str(lively_lm)]
    flags = ["--max-new-tokens", "4", "--threads", "1", "--batch-size", "4", "--device", "cpu"]
    assert main([*args, *flags]) == 0
    assert "rationales" in capsys.readouterr().out
    frame = pd.read_parquet(out / "rationales.parquet")
    assert len(frame) == PreparedDataset.load(data).n_users
    assert frame["completion_tokens"].max() <= 4

    assert main([*args, "--adapter", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "adapter_config.json" in err
    assert main([*args, "--engine", "llama"]) == 2  # a usage error: one line, exit 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "engine" in err
    config = tmp_path / "bad.yaml"
    config.write_text("batch_size: 0\n")
    assert main([*args, "--config", str(config)]) == 2
    assert "batch_size" in capsys.readouterr().err


def test_a_student_behind_an_endpoint_writes_the_same_rationales(
    lively_lm, data, tmp_path, llm_server, llm_server_model
):
    """The student served by serve-llm (as vLLM or llama.cpp's server would) answers every
    user as the in-process student does, greedy; its served name names the answers."""
    reason(data, tmp_path / "here.parquet", cfg(lively_lm), progress=False)
    endpoint = {"base_url": llm_server, "model": llm_server_model, "api_key_env": "NO_SUCH_KEY"}
    result = reason(data, tmp_path / "there.parquet", cfg(lively_lm, endpoint=endpoint),
                    progress=False)  # fmt: skip
    here, there = pd.read_parquet(tmp_path / "here.parquet"), pd.read_parquet(result["path"])
    assert there["response"].tolist() == here["response"].tolist()
    assert there["prompt"].tolist() == here["prompt"].tolist()
    assert set(there["model"]) == {llm_server_model} and result["model"] == llm_server_model


def test_shards_are_keyed_by_the_adapter_weights_not_where_its_folder_lies(data):
    """A run's committed shards resume in another checkout (another absolute path)."""
    from slimrec.methods.slim.student.reason import shard_key

    dataset = PreparedDataset.load(data)
    users = list(range(dataset.n_users))
    prompts = user_prompts(dataset, users, ReasonConfig().prompt)

    def key(adapter: str, model_id: str = "hf:base+lora@abc") -> str:
        return shard_key(ReasonConfig(adapter=adapter), model_id, users, prompts)

    here = key("/work/run/stages/distill-1/adapter")
    assert key("bench/run/stages/distill-1/adapter") == here
    assert key("/work/run/stages/distill-1/adapter", "hf:base+lora@def") != here


def test_ray_runs_the_student_here_or_on_vllm_never_beside_an_endpoint():
    from pydantic import ValidationError

    from slimrec.cluster import RayConfig
    from slimrec.llm.backends import EndpointConfig

    assert ReasonConfig(engine="vllm", ray=RayConfig()).ray is not None  # Ray Data's vLLM
    with pytest.raises(ValidationError, match="drop the endpoint"):
        endpoint = EndpointConfig(model="student", base_url="http://127.0.0.1:8000/v1")
        ReasonConfig(endpoint=endpoint, ray=RayConfig())


def test_a_template_asked_in_two_turns_is_refused_on_ray_before_anything_runs():
    from pydantic import ValidationError

    from slimrec.cluster import RayConfig
    from slimrec.pipeline.config import RunConfig

    two = ReasonConfig().prompt.model_copy(update={"version": "slim-cot-v4", "candidates": 25})
    with pytest.raises(ValidationError, match="asks in two"):
        ReasonConfig(prompt=two, ray=RayConfig())
    with pytest.raises(ValidationError, match="asks in two"):
        RunConfig.model_validate({"teacher": {"prompt": two.model_dump()}, "reason": {"ray": {}}})


def test_threads_reach_the_engine_the_student_answers_through():
    """``reason.threads`` was left out when the student ran on vLLM (vLLM then computed on
    one of 2 cores); each engine now gets it, and leaving it unset keeps the engine's own
    choice."""
    from slimrec.llm.backends.vllm import cpu_binding
    from slimrec.methods.slim.student.reason import engine_backend

    assert engine_backend(ReasonConfig()) is None  # slimrec's decoder, threads set in-process
    for engine in ("vllm", "llamacpp"):
        assert engine_backend(ReasonConfig(engine=engine, threads=2)).threads == 2
        assert engine_backend(ReasonConfig(engine=engine)).threads is None
    vllm = engine_backend(ReasonConfig(engine="vllm", threads=1))
    assert cpu_binding(vllm.threads)["VLLM_CPU_OMP_THREADS_BIND"].isdigit()  # one core


def test_a_structured_student_writes_three_whole_steps_with_nothing_twice(data, tmp_path):
    from slimrec.methods.slim.parse import parse_rationale
    from slimrec.methods.slim.rationale_checks import five_distinct, repeated_lines

    # Random weights fill every value to its length limit: ~900 characters of answer.
    lm = make_tiny_lm(tmp_path / "lm", init_std=0.2, context=2048)
    users = [0, 1, 2, 3]
    free = reason(data, tmp_path / "free.parquet", cfg(lm, users=users), progress=False)
    short = ReasonConfig().prompt.model_copy(update={"per_category": 2, "max_title_chars": 16})
    sampling = SamplingConfig(max_new_tokens=900)
    held = cfg(lm, users=users, structured=True, prompt=short, sampling=sampling)
    result = reason(data, tmp_path / "held.parquet", held, progress=False)
    assert free["parse_rate"] < 1 and result["parse_rate"] == 1
    for text in pd.read_parquet(result["path"])["response"]:
        rationale = parse_rationale(text)
        assert five_distinct(rationale.categories) and repeated_lines(text, min_chars=1) == 0


def test_structured_is_keyed_by_its_pattern_and_absent_from_old_keys(data):
    from pydantic import ValidationError

    from slimrec.methods.slim.student.reason import shard_key

    dataset = PreparedDataset.load(data)
    users = list(range(dataset.n_users))
    prompts = user_prompts(dataset, users, ReasonConfig().prompt)
    assert "structured" not in ReasonConfig().model_dump()

    def key(**kw) -> str:
        return shard_key(ReasonConfig(**kw), "hf:base", users, prompts)

    assert key(structured=True) != key()
    wider = ReasonConfig().prompt.model_copy(update={"max_title_chars": 40})
    assert key(structured=True, prompt=wider) != key(structured=True)
    with pytest.raises(ValidationError, match="structured: true needs slimrec's decoder"):
        ReasonConfig(engine="vllm", structured=True)


@pytest.mark.parametrize("version", ["slim-cot-v3", "slim-cot-v4"])
def test_a_student_distilled_on_picks_by_label_writes_the_offered_titles_once_each(
    data, tmp_path, version
):
    """The teacher's titles are learnt as labels (one label sequence for every user here),
    and the student's labels read back as each user's own candidates, each once. This
    tiny student learns the labels, not its categories: those stay noise. Asked in two
    turns (v4), it writes steps 1 and 2 before it is shown the candidates, and its step 3
    sits under step 2's categories."""
    from tests.methods.slim.student.rationale_fixtures import memorising

    from slimrec.methods.slim.candidate_labels import offered
    from slimrec.methods.slim.grounding import suggestion_lines
    from slimrec.methods.slim.parse import parse_rationale
    from slimrec.methods.slim.structured import steps_text
    from slimrec.methods.slim.student import distill

    offering = ReasonConfig().prompt.model_copy(
        update={"per_category": 2, "version": version, "candidates": 10, "max_items": 3}
    )
    lm = make_tiny_lm(tmp_path / "lm", init_std=0.2, context=2048)  # lively, longer prompts
    users = list(range(6))
    rows = []
    prompts = user_prompts(PreparedDataset.load(data), users, offering)
    for user, prompt in zip(users, prompts, strict=True):
        titles = list(offered(prompt.with_candidates).values())
        groups = [(f"Kind {n}", titles[2 * n : 2 * n + 2]) for n in range(5)]
        response = steps_text("Likes office things.", groups)
        rows.append(
            rationale_row(
                user,
                prompt,
                response,
                model="t",
                prompt_tokens=1,
                completion_tokens=1,
                cached=False,
                at_cap=False,
            )
        )
    pd.DataFrame(rows, columns=COLUMNS).to_parquet(tmp_path / "teacher.parquet")
    student = memorising(lm, max_length=1024)
    distill(tmp_path / "teacher.parquet", student, tmp_path / "student")
    held = cfg(
        lm,
        users=users,
        structured=True,
        prompt=offering,
        adapter=str(tmp_path / "student" / "adapter"),
        sampling=SamplingConfig(max_new_tokens=600),  # its categories are not learnt
    )
    frame = pd.read_parquet(reason(data, tmp_path / "held.parquet", held, progress=False)["path"])
    for text, stored in zip(frame["response"], frame["prompt"], strict=True):
        asked = json.loads(stored)
        titles = list(offered(asked[-1]["content"]).values())
        steps = parse_rationale(text)
        picks = suggestion_lines(steps.items)
        assert len(picks) == 10 and set(picks) == set(titles)  # ten labels, none twice
        if version == "slim-cot-v4":
            assert [m["role"] for m in asked] == ["system", "user", "user"]
            assert "<candidates>" not in asked[1]["content"] and steps.summary
            named = [line.split(". ", 1)[1] for line in steps.categories.splitlines()]
            headings = [
                line[6:-1] for line in steps.items.splitlines() if line.startswith("Under ")
            ]
            assert headings == named
