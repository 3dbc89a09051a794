"""A LoRA adapter on the shipped SmolLM2 for the engine tests (llama.cpp, serve)."""

from __future__ import annotations


def random_adapter(folder, modules, alpha: float = 8.0):
    """A LoRA on SmolLM2 whose A and B are both random (a trained adapter's B is not zero)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from slimrec.llm.local import resolve_base

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_base("smollm2-135m"))
    lora = LoraConfig(r=4, lora_alpha=alpha, target_modules=modules, init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(folder)
    return folder
