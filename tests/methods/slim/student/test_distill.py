"""LoRA distillation on a tiny real LM: it learns, resumes exactly, and refuses bad input."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tests.methods.slim.student.rationale_fixtures import rationale_rows, write_rationales
from transformers import AutoModelForCausalLM, AutoTokenizer

from slimrec.config import load_yaml
from slimrec.errors import ConfigError, DataError
from slimrec.llm.chat import chat_prompt_ids
from slimrec.methods.slim.rationale_checks import repeated_lines
from slimrec.methods.slim.student import StudentConfig, distill
from slimrec.methods.slim.student.sft_data import (
    load_rationales,
    split_users,
)


def small(model, **overrides) -> StudentConfig:
    base = dict(base_model=str(model), batch_size=2, grad_accum=2, threads=1, max_length=512)
    return StudentConfig(**(base | overrides))


def test_training_memorises_rationales_and_the_merged_adapter_reproduces_them(memorised_run):
    from peft import PeftModel

    rationales, out, cfg = memorised_run
    results = json.loads((out / "results.json").read_text())
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == list(range(40))
    assert lines[-1]["train_loss"] < 0.3 * lines[0]["train_loss"]
    assert results["valid_loss"] < 0.3 * results["valid_loss_base"]
    assert results["n_train_users"] == 5 and results["n_valid_users"] == 1

    tokenizer = AutoTokenizer.from_pretrained(cfg.base_model, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(cfg.base_model, local_files_only=True)
    merged = PeftModel.from_pretrained(base, out / "adapter").merge_and_unload()
    record = load_rationales(rationales)[0]
    ids = torch.tensor([chat_prompt_ids(tokenizer, record.messages)])
    answer = merged.generate(ids, max_new_tokens=40, do_sample=False, pad_token_id=0)
    text = tokenizer.decode(answer[0, ids.shape[1] :])
    assert text.startswith("Step 1: The user likes pens and paper")
    assert "Step 2: 1. Pens 2. Notebooks 3. Staplers" in text
    info = json.loads((out / "adapter" / "student.json").read_text())
    assert info["epoch"] == results["best_epoch"] and info["base_model"] == cfg.base_model
    # The base as slimrec knows it (here a folder, by its whole path), not a cache folder.
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == str(Path(cfg.base_model).resolve())


def _adapter(folder):
    return load_file(folder / "adapter_model.safetensors")


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(
    tiny_lm, rationales, tmp_path, monkeypatch
):
    cfg = small(tiny_lm, epochs=3, lr=1e-2, lora_dropout=0.1)  # dropout: RNG must resume
    straight = distill(rationales, cfg, tmp_path / "straight")

    # Two epochs, then the same folder asked for three.
    distill(rationales, cfg.model_copy(update={"epochs": 2}), tmp_path / "two")
    assert len((tmp_path / "two" / "metrics.jsonl").read_text().splitlines()) == 2
    resumed = distill(rationales, cfg, tmp_path / "two")

    # Killed half-way through epoch 2 (0-based): it resumes after epoch 1.
    calls = {"n": 0}
    module = sys.modules[
        "slimrec.methods.slim.student.distill"
    ]  # the package re-exports the function
    real = module.token_nll

    def dying(*args, **kwargs):
        calls["n"] += 1
        # 1 base validation, then per epoch 3 training batches + 1 validation batch.
        if calls["n"] == 1 + 4 + 4 + 2:  # the second training batch of epoch 2
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "token_nll", dying)
    with pytest.raises(KeyboardInterrupt):
        distill(rationales, cfg, tmp_path / "killed")
    monkeypatch.setattr(module, "token_nll", real)
    assert not (tmp_path / "killed" / "results.json").exists()
    killed = distill(rationales, cfg, tmp_path / "killed")

    want = _adapter(tmp_path / "straight" / "last")
    for run, res in (("two", resumed), ("killed", killed)):
        got = _adapter(tmp_path / run / "last")
        assert got.keys() == want.keys()
        for name, tensor in want.items():
            torch.testing.assert_close(got[name], tensor, rtol=1e-5, atol=1e-6)
        same = ("valid_loss", "best_epoch", "steps", "epochs_run")
        assert {k: res[k] for k in same} == pytest.approx({k: straight[k] for k in same})
        lines = (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["epoch"] for x in lines] == [0, 1, 2]
    assert load_yaml(StudentConfig, tmp_path / "two" / "config.yaml") == cfg
    assert not any(p.name.startswith(".") for p in (tmp_path / "killed").iterdir())


def test_a_finished_run_is_reused_and_other_settings_are_refused(tiny_lm, rationales, tmp_path):
    cfg = small(tiny_lm, epochs=1)
    first = distill(rationales, cfg, tmp_path / "run")
    shutil.rmtree(tmp_path / "run" / "last")  # reuse must not need the checkpoint
    assert distill(rationales, cfg, tmp_path / "run") == first
    distill(rationales, small(tiny_lm, epochs=1, seed=1), tmp_path / "other")
    with pytest.raises(ConfigError, match="other settings or data"):
        distill(rationales, small(tiny_lm, epochs=2, lr=1e-3), tmp_path / "other")


def test_bad_base_models_and_inputs_are_one_line_errors(tiny_lm, rationales, tmp_path):
    threads = torch.get_num_threads()
    with pytest.raises(ConfigError, match="none of the target modules"):
        distill(rationales, small(tiny_lm, target_modules=("c_attn",), threads=3), tmp_path / "a")
    assert torch.get_num_threads() == threads  # restored, even after an error
    assert not (tmp_path / "a").exists()  # nothing written for a model that cannot load
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(ConfigError, match="cannot load a causal LM"):
        distill(rationales, small(empty), tmp_path / "b")
    with pytest.raises(ConfigError, match="no-such-model"):
        distill(rationales, small("no-such-model"), tmp_path / "c")
    one_user = write_rationales(tmp_path / "one.parquet", rationale_rows(1))
    with pytest.raises(DataError, match="fewer than 2 users"):
        distill(one_user, small(tiny_lm), tmp_path / "d")
    assert not (tmp_path / "d").exists()


def test_looping_teacher_answers_are_left_out_of_training_only(tiny_lm, tmp_path):
    rows = rationale_rows(8)
    loop = "Step 1: The user likes pens.\n" + "1. Pilot G2 gel pens, black\n" * 4 + "Step 2: x"
    for row in rows[::2]:
        row["response"] = loop + "\nStep 3: y"
    path = write_rationales(tmp_path / "r.parquet", rows)
    cfg = small(tiny_lm, epochs=1)
    train, valid = split_users(load_rationales(path), cfg.valid_fraction, cfg.seed)
    looping = sum(repeated_lines(r.rationale) > 1 for r in train)
    assert 0 < looping < len(train)
    every = distill(path, cfg, tmp_path / "all")
    kept = distill(path, small(tiny_lm, epochs=1, max_repeated_lines=1), tmp_path / "kept")
    assert (every["n_train"], every["n_valid"]) == (len(train), len(valid))
    assert (kept["n_train"], kept["n_valid"]) == (len(train) - looping, len(valid))
    # Left out of keys while unset: runs made before the setting existed stay valid.
    assert "max_repeated_lines" not in cfg.model_dump(mode="json")
    only_loops = write_rationales(tmp_path / "loops.parquet", rows[::2])
    with pytest.raises(ConfigError, match="repeats more than 0 lines"):
        distill(only_loops, small(tiny_lm, epochs=1, max_repeated_lines=0), tmp_path / "none")


def test_bf16_autocast_trains_float32_adapters_that_learn_as_the_float32_run_does(
    lively_lm, rationales, tmp_path
):
    fast = dict(epochs=5, batch_size=1, grad_accum=1, lr=2e-2, warmup_steps=0, lora_dropout=0.0)
    plain = distill(rationales, small(lively_lm, **fast), tmp_path / "fp32")
    mixed = distill(rationales, small(lively_lm, **fast, autocast="bfloat16"), tmp_path / "bf16")
    assert plain["autocast"] is None and mixed["autocast"] == "bfloat16"
    assert mixed["key"] != plain["key"]  # other numbers: not reused for each other
    assert "autocast" not in small(lively_lm).model_dump()  # keys of earlier runs hold
    weights = load_file(tmp_path / "bf16" / "adapter" / "adapter_model.safetensors")
    assert {t.dtype for t in weights.values()} == {torch.float32}
    # Same data and seed: bf16 rounding moves the loss (so autocast was on), and the run
    # learns as much as the float32 one.
    assert mixed["valid_loss"] != plain["valid_loss"]
    assert plain["valid_loss"] < 0.7 * plain["valid_loss_base"]
    assert mixed["valid_loss"] == pytest.approx(plain["valid_loss"], rel=0.1)
    line = json.loads((tmp_path / "bf16" / "metrics.jsonl").read_text().splitlines()[0])
    assert line["autocast"] == "bfloat16"


def test_a_log_without_a_terminal_still_shows_how_far_an_epoch_is(
    tiny_lm, rationales, tmp_path, capsys
):
    distill(rationales, small(tiny_lm, epochs=1), tmp_path / "run")
    steps = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())["steps"]
    out = capsys.readouterr().out  # captured: no terminal, so no bar
    assert f"epoch 0: step {steps}/{steps}, loss " in out and " s a step" in out
