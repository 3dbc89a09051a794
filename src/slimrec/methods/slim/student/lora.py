"""The student model: a local base LM with LoRA adapters, and its rationale-token loss.

The base is a shipped name (``smollm2-135m``, resolved to a local folder by
:func:`slimrec.llm.models.resolve_model`) or any local Hugging Face model folder;
nothing is ever fetched from a hub. The loss runs the LM head only on the supervised
positions: the full ``[batch, length, vocab]`` logits of a 49k-token vocabulary would
cost hundreds of MB per batch on a CPU for positions whose loss is discarded anyway.
"""

from __future__ import annotations

import warnings

import torch

from slimrec.errors import ConfigError
from slimrec.llm.local import pick_dtype, resolve_base
from slimrec.methods.slim.student.config import StudentConfig
from slimrec.methods.slim.student.sft_data import IGNORE


def load_student(cfg: StudentConfig, device: torch.device):
    """``(tokenizer, peft model on device, base folder)`` with fresh, seeded LoRA weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_base(cfg.base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        base = AutoModelForCausalLM.from_pretrained(
            folder, local_files_only=True, dtype=pick_dtype(cfg.dtype, device)
        )
    except (OSError, ValueError) as e:
        raise ConfigError(
            f"cannot load a causal LM ({str(e).splitlines()[0][:200]})",
            where=folder,
            fix="pass a Hugging Face model folder with config, weights and tokenizer",
        ) from e
    if not tokenizer.chat_template:
        raise ConfigError(
            "the tokenizer has no chat template", where=folder, fix="use an instruct model"
        )
    if tokenizer.eos_token_id is None:
        raise ConfigError("the tokenizer has no end-of-sequence token", where=folder)
    names = {name.rsplit(".", 1)[-1] for name, _ in base.named_modules()}
    targets = [t for t in cfg.target_modules if t in names]
    if not targets:
        raise ConfigError(
            f"none of the target modules {list(cfg.target_modules)} exist in the model",
            where=folder,
            fix="set target_modules to names of its linear layers",
        )
    torch.manual_seed(cfg.seed)  # LoRA's A matrices are drawn at random
    lora = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    with warnings.catch_warnings():  # peft calls an API transformers 5 deprecates
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        model = get_peft_model(base, lora)
    return tokenizer, model.to(device), folder


def token_nll(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """Summed negative log-likelihood of the supervised tokens, and how many there are."""
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    labels = batch["labels"][:, 1:]
    keep = labels != IGNORE
    n = int(keep.sum())
    decoder, head = causal_lm.base_model, causal_lm.get_output_embeddings()
    # Models that rescale or cap their logits (Gemma 2, Cohere) need the full forward.
    plain = not any(
        getattr(causal_lm.config, k, None) for k in ("final_logit_softcapping", "logit_scale")
    )
    if plain and decoder is not causal_lm and head is not None:
        hidden = decoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        # Position t predicts token t + 1: hidden[:, :-1] against labels[:, 1:].
        logits = head(hidden[:, :-1][keep]).float()
    else:  # no separate decoder: pay for the full logits
        out = causal_lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = out.logits[:, :-1][keep].float()
    loss = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
    return loss, n
