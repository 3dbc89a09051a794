"""The settings of LLM-SRec (Kim et al., "Lost in Sequence", KDD 2025).

Paper values (the authors' code) where the CPU allows them; see
../shared/specs/llm-srec.md, Sec. 5.3. Training settings shared with every method
(epochs, batch size, learning rate, early stopping, seed) come from the run's ``train``
section, as for the other methods; these are LLM-SRec's own.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from slimrec.config import LaterSettingsOmitted
from slimrec.methods.base import MethodConfig
from slimrec.training.config import MONITOR_PATTERN


class LLMSRecConfig(LaterSettingsOmitted, MethodConfig):
    """One LLM-SRec variant."""

    LATER_OFF: ClassVar[dict[str, Any]] = {"dtype": "auto"}

    llm: str = Field(
        "smollm2-135m",
        description="The frozen causal LM: a shipped name (README, 'Local models') or a local "
        "Hugging Face folder (the paper: Llama-3.2-3B-Instruct).",
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="The frozen LLM's weights: auto is bfloat16 on a GPU that has it (a 3B "
        "LLM in half the memory, on tensor cores), float32 on CPUs; the MLPs stay float32.",
    )
    history_items: int = Field(
        10, ge=1, description="Most recent items in the user prompt (the paper: 10)."
    )
    verb: str = Field("purchased", description="What users did: 'purchased', 'watched', ...")
    max_title_chars: int = Field(120, ge=8, description="Titles are cut to this length.")
    rep_dim: int = Field(128, ge=1, description="Width of the user and item vectors.")
    head_hidden: int = Field(2048, ge=1, description="Hidden width of the read-out MLPs.")
    train_negatives: int = Field(3, ge=1, description="Negatives per training pair.")
    distill_weight: float = Field(
        1.0, ge=0, description="Weight of the MSE towards the teacher's user vector."
    )
    uniform_weight: float = Field(1.0, ge=0, description="Weight of the uniformity terms.")
    uniformity_t: float = Field(2.0, gt=0, description="t of exp(-t ||x_i - x_j||^2).")
    encode_batch_size: int = Field(64, ge=1, description="Prompts per LLM forward at scoring.")
    frozen: bool = Field(
        False,
        description="A labelled deviation for CPUs: text-only prompts (no CF soft tokens), "
        "fixed read-out vectors, LLM states computed once; only the MLPs train.",
    )
    # Training settings of its own: the run's `train` section suits ID backbones (many
    # cheap epochs); an LLM-SRec epoch is one LLM forward and backward per user.
    epochs: int = Field(3, ge=1, description="Epochs (the paper: 10).")
    batch_size: int = Field(8, ge=1, description="Users per step (the paper: 20).")
    lr: float = Field(1e-4, gt=0, description="Adam learning rate (the paper: 1e-4).")
    patience: int = Field(2, ge=1, description="Epochs without a better validation score.")
    lr_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="Learning rate x this after every validation (the paper: 0.95, ~10 "
        "validations an epoch; here one an epoch).",
    )
    monitor: str | None = Field(
        None,
        pattern=MONITOR_PATTERN,
        description="Validation metric that picks its best epoch (the paper: hit@10 of "
        "1 + 99; validation here ranks the full catalogue); none: the run's train.monitor.",
    )
    pairs: Literal["last", "all"] = Field(
        "last",
        description="Training pairs per user and epoch: 'last' (its last training item, the "
        "authors' code) or 'all' (every prefix: an extension, ~mean length x the cost).",
    )
