"""An adapter merged into a copy of its base: the same model as peft's merge, saved once."""

from __future__ import annotations

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from slimrec.llm.merge import merged_folder


def test_the_merged_folder_is_peft_merged_model_and_is_built_once(lively_lm, tmp_path):
    torch.manual_seed(0)
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(lively_lm), lora).save_pretrained(
        tmp_path / "adapter"
    )  # peft wraps the model in place: the base below is loaded afresh
    base = AutoModelForCausalLM.from_pretrained(lively_lm)

    folder = merged_folder(str(lively_lm), str(tmp_path / "adapter"), cache=tmp_path / "c")
    merged = AutoModelForCausalLM.from_pretrained(folder)
    reference = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(lively_lm), tmp_path / "adapter"
    ).merge_and_unload()
    ids = torch.tensor([[1, 5, 9, 14]])
    with torch.no_grad():
        assert torch.allclose(merged(ids).logits, reference(ids).logits, atol=1e-5)
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-3)
    assert merged.dtype == torch.float32 and (folder / "tokenizer_config.json").is_file()

    stamp = (folder / "config.json").stat().st_mtime_ns
    again = merged_folder(str(lively_lm), str(tmp_path / "adapter"), cache=tmp_path / "c")
    assert again == folder and (folder / "config.json").stat().st_mtime_ns == stamp
