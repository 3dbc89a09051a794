"""Settings of one student distillation run, typed and round-tripped to YAML.

The student is a small causal LM fine-tuned with LoRA to write the teacher's rationale
for a prompt: only the rationale tokens are supervised (``-log P(rationale | prompt)``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from slimrec.config import LaterSettingsOmitted
from slimrec.machine import THREADS

DEFAULT_STUDENT = "smollm2-135m"
# Attention and MLP projections of Llama/Qwen/SmolLM-style decoders.
DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Settings a resumed run may change without invalidating its checkpoint.
RESUMABLE = ("epochs", "threads", "device", "eval_batch_size")


class StudentConfig(LaterSettingsOmitted):
    """How to distil the teacher's rationales into a small student LM with LoRA."""

    model_config = ConfigDict(extra="forbid")
    LATER_OFF: ClassVar[dict[str, Any]] = {"max_repeated_lines": None, "autocast": None}

    base_model: str = Field(
        DEFAULT_STUDENT,
        description="Student base model: a shipped name (smollm2-135m, ...) or a local "
        "Hugging Face model folder.",
    )
    lora_rank: int = Field(8, ge=1, description="LoRA rank r.")
    lora_alpha: float = Field(16.0, gt=0, description="LoRA scaling alpha (update is alpha/r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA input.")
    target_modules: tuple[str, ...] = Field(
        DEFAULT_TARGETS,
        min_length=1,
        description="Names of the linear layers that get LoRA adapters; names absent from "
        "the model are ignored, but at least one must exist.",
    )
    epochs: int = Field(3, ge=1, description="Passes over the training rationales.")
    lr: float = Field(2e-4, gt=0, description="AdamW learning rate (constant after warm-up).")
    warmup_steps: int = Field(
        10, ge=0, description="Optimiser steps of linear learning-rate warm-up."
    )
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    clip_grad_norm: float | None = Field(1.0, gt=0, description="Clip gradients to this norm.")
    batch_size: int = Field(4, ge=1, description="Sequences per forward pass.")
    grad_accum: int = Field(
        4, ge=1, description="Forward passes accumulated into one optimiser step."
    )
    eval_batch_size: int = Field(8, ge=1, description="Sequences per validation forward pass.")
    max_length: int = Field(
        1024,
        ge=16,
        description="Tokens per sequence (prompt + rationale). Longer ones lose prompt "
        "tokens first (the oldest history, in the middle of the prompt); the rationale is "
        "cut only when it alone leaves less than a quarter of this for the prompt.",
    )
    valid_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of users whose rationales are held out for validation and the "
        "quality report (seeded split by user; at least one user on each side).",
    )
    max_repeated_lines: int | None = Field(
        None,
        ge=0,
        description="Train only on teacher rationales with at most this many lines that "
        "repeat an earlier line (a looping teacher teaches the student to loop); "
        "validation keeps every rationale. None = keep all.",
    )
    only_parsed: bool = Field(
        True, description="Train only on teacher rationales that parsed into all three steps."
    )
    seed: int = Field(0, description="Seeds the user split, LoRA init, batch order, dropout.")
    threads: int | None = Field(None, ge=1, description=THREADS)
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    dtype: str = Field(
        "auto",
        pattern=r"^(auto|float32|bfloat16|float16)$",
        description="Weights dtype of the base model: auto = float32 on CPU, bfloat16 on "
        "GPUs that support it.",
    )
    autocast: str | None = Field(
        None,
        pattern=r"^(auto|bfloat16|float16)$",
        description="Mixed precision: the forward and backward passes compute in this dtype "
        "(torch.autocast) while the weights and the optimiser stay in `dtype`. bfloat16 "
        "made a step 1.31x faster on an AMX CPU; without AVX-512 BF16 or AMX it is slower. "
        "auto = bfloat16 where the device has it natively, else off. None = off.",
    )
