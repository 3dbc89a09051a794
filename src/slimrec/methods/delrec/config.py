"""The settings of DELRec (Sun & Zhang, "DELRec: Distilling Sequential Pattern to Enhance
LLM-based Recommendation", arXiv 2406.11156), a variant per registered name.

Defaults are the CPU-small configuration of ../shared/specs/delrec.md (Sec. 10.3); the
authors' values (Flan-T5-XL, 100 soft tokens, Lion lr 5e-3 / 1e-4, AdaLoRA init_r 320)
are in the field descriptions. The SR teacher and its training settings come from the
run (``backbones`` and ``train``); the number of candidates in every prompt is the run's
sampled protocol (``eval.negatives`` + 1; the paper: 20), so DELRec and every other
method are tested on the identical candidate lists.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slimrec.methods.base import MethodConfig

Task = Literal["ta", "rps"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromptSettings(_Section):
    """How histories and candidates are written (the authors' four domain wordings)."""

    item_noun: str = Field("item", description="'movie', 'game', 'item' ...")
    verb: str = Field("purchase", description="Present tense: 'watch', 'play', 'purchase'.")
    verb_past: str = Field("purchased", description="Past tense: 'watched', 'played' ...")
    history_items: int = Field(10, ge=2, description="Most recent items in a prompt.")
    max_title_chars: int = Field(120, ge=8, description="Titles are cut to this length.")
    rearrange_articles: bool = Field(
        True, description="'Usual Suspects, The (1995)' -> 'The Usual Suspects (1995)'."
    )


class SoftPromptSettings(_Section):
    """The soft prompt P spliced into every prompt after 'The recommendation pattern ...'."""

    n_tokens: int = Field(20, ge=0, description="Soft tokens (the paper: 100; 0: none).")
    init: Literal["normal_matched", "vocab", "openprompt"] = Field(
        "normal_matched",
        description="N(0, std of the vocabulary embeddings) | random vocabulary rows | "
        "N(0, 1) as OpenPrompt (an outlier for small models).",
    )


class Stage1Settings(_Section):
    """Pattern distilling: only P trains, the LLM frozen."""

    tasks: tuple[Task, ...] = Field(
        ("ta", "rps"),
        description="Temporal Analysis and Recommendation Pattern Simulating; () leaves P "
        "at its random init (the no-distill ablation).",
    )
    users: int | None = Field(
        64, ge=1, description="A seeded subset of training users (None: all)."
    )
    valid_users: int = Field(
        16, ge=1, description="Held-out users whose imitation HR@1 picks the best epoch."
    )
    epochs: int = Field(1, ge=1, description="Passes over the stage-1 users.")
    batch_size: int = Field(4, ge=1, description="Examples per task and step (the paper: 20).")
    lr: float = Field(5e-3, gt=0, description="Lion learning rate (the paper: 5e-3).")
    weight_decay: float = Field(1e-5, ge=0, description="The paper: 1e-5.")
    warmup_steps: int = Field(4, ge=0, description="Linear warm-up, then linear decay.")
    weighting: Literal["dynamic", "equal"] = Field(
        "dynamic", description="Task weights w_i ∝ ||grad_i||^-alpha (the paper) or equal."
    )
    alpha: float = Field(0.5, ge=0, description="Exponent of the dynamic weighting.")
    sr_top_h: int = Field(10, ge=2, description="SR items shown to RPS (the paper: 10).")
    icl_length: int = Field(4, ge=3, description="TA in-context demonstration length.")
    icl_back: int = Field(3, ge=1, description="TA: history items before the user's part.")
    ta_next: Literal["history", "sr"] = Field(
        "history",
        description="TA's 'next item': the true one (the authors' code) or the SR model's "
        "top-1 (an option: the SR model then enters TA too).",
    )


class Stage2Settings(_Section):
    """LLM-based sequential recommendation: P frozen, the LLM adapted."""

    adapter: Literal["lora", "adalora", "none"] = Field(
        "lora",
        description="LoRA | AdaLoRA (the paper; ranks pruned from init_r to lora_rank) | "
        "none (zero-shot), through peft.",
    )
    lora_rank: int = Field(8, ge=1, description="LoRA rank; AdaLoRA's target_r (the paper: 8).")
    adalora_init_r: int = Field(12, ge=1, description="AdaLoRA's initial rank (the paper: 320).")
    adalora_tinit: int = Field(0, ge=0, description="AdaLoRA: steps before pruning starts.")
    adalora_tfinal: int = Field(0, ge=0, description="AdaLoRA: final steps at the budget.")
    adalora_delta_t: int = Field(1, ge=1, description="AdaLoRA: steps between reallocations.")
    adalora_orth_weight: float = Field(
        0.5, ge=0, description="AdaLoRA's orthogonality regulariser (peft's default)."
    )
    lora_alpha: int = Field(32, ge=1, description="The paper: 32.")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="The paper: 0.05.")
    target_modules: tuple[str, ...] = Field(
        ("q_proj", "v_proj", "q", "v"),
        description="Attention projections to adapt (those the model has).",
    )
    epochs: int = Field(1, ge=1, description="Passes over the training users.")
    users: int | None = Field(None, ge=1, description="A seeded subset (None: all).")
    batch_size: int = Field(4, ge=1, description="Users per step (the paper: 20).")
    lr: float = Field(5e-4, gt=0, description="Lion learning rate (the paper: 1e-4).")
    weight_decay: float = Field(1e-6, ge=0, description="The paper: 1e-6.")
    warmup_steps: int = Field(4, ge=0, description="Linear warm-up, then linear decay.")
    valid_users: int = Field(
        64, ge=1, description="Seeded validation users scored after each epoch."
    )


class DelrecConfig(MethodConfig):
    """One DELRec variant (see the module docstring)."""

    llm: str = Field(
        "smollm2-135m",
        description="A causal or encoder-decoder LM: a shipped name, a Hub id or a folder "
        "(the paper: Flan-T5-XL).",
    )
    dtype: Literal["auto", "float32", "bfloat16"] = Field("auto", description="LLM dtype.")
    prompt: PromptSettings = Field(default_factory=PromptSettings)
    soft_prompt: SoftPromptSettings = Field(default_factory=SoftPromptSettings)
    stage1: Stage1Settings = Field(default_factory=Stage1Settings)
    stage2: Stage2Settings = Field(default_factory=Stage2Settings)
    scoring: Literal["mean", "sum", "first"] = Field(
        "mean",
        description="A candidate's score: mean or sum of its title's token log-probs, or "
        "the first token's (the authors' verbaliser; ties whole groups of titles).",
    )
    optimizer: Literal["lion", "adamw"] = Field("lion", description="Both stages.")
    clip: float = Field(2.0, gt=0, description="Gradient-norm clip before each step.")
