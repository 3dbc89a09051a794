"""The distilled student's LoRA adapter on llama.cpp, over the shipped SmolLM2 GGUF."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from tests.lora_fixtures import random_adapter

from slimrec.errors import ConfigError
from slimrec.llm.backends.base import ChatRequest, SamplingConfig

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SLIMREC_OFFLINE") == "1", reason="SLIMREC_OFFLINE=1"),
]
pytest.importorskip("xllamacpp", reason="CI installs slimrec[llamacpp]: never skipped there")

MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
QUESTIONS = [
    "Name three fruits.",
    "What is the capital of France?",
    "Write a haiku about rain.",
    "List two board games.",
    "Describe a cat in one sentence.",
    "What is 2+2?",
    "Suggest a video game for a child.",
    "Name a famous painter.",
]


def test_the_shipped_gguf_stores_query_and_key_rows_as_permute_rows_orders_them():
    import gguf
    from safetensors.numpy import load_file

    from slimrec.llm.backends.llamacpp import gguf_file
    from slimrec.llm.gguf_lora import permute_rows
    from slimrec.llm.local import resolve_base

    path, _ = gguf_file("smollm2-135m")
    stored = {t.name: t for t in gguf.GGUFReader(path).tensors}
    hf = load_file(str(resolve_base("smollm2-135m") / "model.safetensors"))
    for name, hf_name, heads in (("attn_q", "q_proj", 9), ("attn_k", "k_proj", 3)):
        t = stored[f"blk.0.{name}.weight"]
        weight = gguf.quants.dequantize(t.data, t.tensor_type).reshape(t.shape[::-1])
        ours = hf[f"model.layers.0.self_attn.{hf_name}.weight"]
        assert not np.allclose(weight, ours)  # the GGUF's own row order ...
        assert np.allclose(weight, permute_rows(ours, heads))  # ... is the permuted one


def test_a_peft_adapter_becomes_a_llama_cpp_adapter_file_once(tmp_path):
    import gguf
    from safetensors.numpy import load_file

    from slimrec.llm.backends.llamacpp import gguf_file
    from slimrec.llm.gguf_lora import lora_gguf, permute_rows

    adapter = random_adapter(tmp_path / "adapter", MODULES)
    base, _ = gguf_file("smollm2-135m")
    out = lora_gguf(adapter, base, cache=tmp_path / "cache")
    reader = gguf.GGUFReader(out)
    assert reader.fields["general.type"].contents() == "adapter"
    assert reader.fields["adapter.type"].contents() == "lora"
    assert reader.fields["adapter.lora.alpha"].contents() == 8.0
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 30 * len(MODULES) * 2  # A and B of 7 projections in 30 blocks
    peft = load_file(str(adapter / "adapter_model.safetensors"))
    key = "base_model.model.model.layers.4.self_attn.{}.lora_{}.weight"
    a = np.asarray(tensors["blk.4.attn_q.weight.lora_a"].data)
    b = np.asarray(tensors["blk.4.attn_q.weight.lora_b"].data)
    assert np.array_equal(a, peft[key.format("q_proj", "A")])  # r x in
    assert np.array_equal(b, permute_rows(peft[key.format("q_proj", "B")], 9))  # out x r
    v = np.asarray(tensors["blk.4.attn_v.weight.lora_b"].data)
    assert np.array_equal(v, peft[key.format("v_proj", "B")])  # no rotary: rows as they are
    stamp = out.stat().st_mtime_ns
    assert lora_gguf(adapter, base, cache=tmp_path / "cache") == out
    assert out.stat().st_mtime_ns == stamp  # cached by the adapter's weights


def test_adapters_llama_cpp_cannot_apply_are_refused_in_one_line(tmp_path):
    from slimrec.llm.backends.llamacpp import gguf_file
    from slimrec.llm.gguf_lora import lora_gguf

    base, _ = gguf_file("smollm2-135m")
    with pytest.raises(ConfigError, match="not a LoRA adapter folder"):
        lora_gguf(tmp_path, base, cache=tmp_path / "cache")
    adapter = random_adapter(tmp_path / "adapter", ["q_proj"])
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"use_dora": True}))
    with pytest.raises(ConfigError, match=r"plain LoRA.*use_dora"):
        lora_gguf(adapter, base, cache=tmp_path / "cache")


def test_the_student_on_llama_cpp_answers_as_transformers_does(tmp_path, monkeypatch):
    """A random LoRA on the query and key projections (where the GGUF's row order
    differs), greedy: llama.cpp on the 4-bit base with the adapter agrees with
    transformers on the de-quantised base with the adapter for most questions, as the two
    engines agree without one (measured here: 6 of 8 both); without the adapter, or with
    its rows left unpermuted, llama.cpp agrees on almost none (1 of 8 each)."""
    import slimrec.llm.gguf_lora as gguf_lora
    from slimrec.llm.backends.hf import HFBackend
    from slimrec.llm.backends.llamacpp import LlamaCppBackend

    adapter = str(random_adapter(tmp_path / "adapter", ["q_proj", "k_proj"]))
    requests = [ChatRequest(f"q{i}", [{"role": "user", "content": q}])
                for i, q in enumerate(QUESTIONS)]  # fmt: skip
    sampling = SamplingConfig(max_new_tokens=16)

    def answers(backend) -> list[str]:
        got = dict(backend.generate(requests, sampling))
        getattr(backend, "close", lambda: None)()
        return [got[i].text for i in range(len(requests))]

    def agree(a: list[str], b: list[str]) -> int:
        return sum(map(str.__eq__, a, b))

    reference = answers(HFBackend("smollm2-135m", adapter=adapter, threads=1, progress=False))
    student = LlamaCppBackend("smollm2-135m", adapter=adapter, parallel=1, threads=1)
    assert student.model_id.startswith("llamacpp:smollm2-135m+lora@")
    here = answers(student)
    bare = answers(LlamaCppBackend("smollm2-135m", parallel=1, threads=1))
    monkeypatch.setattr(gguf_lora, "PERMUTED", set())
    monkeypatch.setattr(gguf_lora, "VERSION", -1)  # a new cache key: convert again, wrongly
    unpermuted = answers(LlamaCppBackend("smollm2-135m", adapter=adapter, parallel=1, threads=1))
    counts = [agree(x, reference) for x in (here, bare, unpermuted)]
    print("agree with transformers: {}/8 with the adapter, {}/8 without, {}/8 unpermuted".format(
        *counts))  # fmt: skip
    assert counts[0] >= 4 and counts[1] <= 2 and counts[2] <= 2


def test_reason_writes_through_llama_cpp_with_the_adapter(tmp_path):
    import pandas as pd
    from tests.methods.slim.test_teach import make_dataset

    from slimrec.cluster import RayConfig
    from slimrec.methods.slim.student.reason import ReasonConfig, reason

    adapter = str(random_adapter(tmp_path / "adapter", ["q_proj", "v_proj"]))
    data = make_dataset(tmp_path, n_users=3)
    config = ReasonConfig(base_model="smollm2-135m", adapter=adapter, engine="llamacpp",
                          threads=1, sampling=SamplingConfig(max_new_tokens=8))  # fmt: skip
    result = reason(data, tmp_path / "r.parquet", config, progress=False)
    frame = pd.read_parquet(result["path"])
    assert list(frame["user"]) == [0, 1, 2] and frame["response"].str.len().gt(0).all()
    assert frame["model"].iloc[0].startswith("llamacpp:smollm2-135m+lora@")
    with pytest.raises(ValueError, match="structured"):
        ReasonConfig(engine="llamacpp", structured=True)
    with pytest.raises(ValueError, match="not llamacpp"):
        ReasonConfig(engine="llamacpp", ray=RayConfig(replicas=1))
