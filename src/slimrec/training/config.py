"""Settings of one training run, typed and round-tripped to YAML."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from slimrec.config import LaterSettingsOmitted
from slimrec.machine import THREADS

# ndcg@K | hit@K | mrr@K: the validation metrics an epoch reports (slimrec.eval.summarize).
MONITOR_PATTERN = r"^(ndcg|hit|mrr)@[1-9][0-9]*$"


def monitor_cutoff(monitor: str) -> int:
    """K of a validated monitor name ``metric@K``."""
    return int(monitor.rsplit("@", 1)[1])


class TrainConfig(LaterSettingsOmitted):
    """How to train one backbone. ``model`` holds the backbone's own options."""

    model_config = ConfigDict(extra="forbid")
    LATER_OFF: ClassVar[dict[str, Any]] = {
        "mask_history": True,
        "rationale_holdout": 0,
        "rationale_items": 0,
        "pairs": "all",
        "sampled_negatives": 100,
        "lr_decay": 1.0,
    }

    backbone: str = Field(
        "sasrec", description="caser | gru4rec | sasrec | srgnn, '+' for the text-fused variant."
    )
    method: str | None = Field(
        None,
        description="The method that trained this run (slimrec.methods.METHODS: backbone+, "
        "slim, text-matching, ...; set by it); None: `backbone` trained as is.",
    )
    model: dict[str, Any] = Field(
        default_factory=dict, description="Backbone options, e.g. {dim: 64, n_layers: 2, loss: ce}."
    )
    epochs: int = Field(
        200, ge=1, description="Upper bound on epochs; early stopping usually ends sooner."
    )
    patience: int = Field(
        10, ge=1, description="Stop after this many epochs without a better validation score."
    )
    min_patience_steps: int = Field(
        500,
        ge=0,
        description="Also require this many optimiser steps without a gain before stopping.",
    )
    monitor: str = Field(
        "ndcg@10",
        pattern=MONITOR_PATTERN,
        description="Validation metric that picks the best epoch: ndcg@K, hit@K or mrr@K, "
        "K one of `ks`.",
    )
    batch_size: int = Field(256, ge=1, description="Rows per optimisation step.")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate.")
    lr_decay: float = Field(
        1.0,
        gt=0,
        le=1,
        description="The learning rate is multiplied by this after every epoch's validation "
        "(1: constant; LLM-SRec's authors: 0.95 per validation).",
    )
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    clip_grad_norm: float | None = Field(None, gt=0, description="Clip gradients to this norm.")
    max_len: int = Field(50, ge=1, description="Most recent items of a history the model sees.")
    layout: Literal["auto", "prefix", "causal"] = Field(
        "auto",
        description="Training examples: causal windows where the backbone allows, or prefixes.",
    )
    pairs: Literal["all", "last"] = Field(
        "all",
        description="Training pairs per epoch: every (history -> next item) pair of the "
        "training part, or only each user's last one (LLM-SRec's protocol; prefix layout).",
    )
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs of the reported metrics.")
    mask_history: bool = Field(
        True,
        description="Full-ranking validation and test mask the user's history items (never "
        "the target). False ranks them too, as RecBole 1.2.1 does for sequential models.",
    )
    rationale_holdout: int = Field(
        0,
        ge=0,
        description="Methods with user text: the rationales were written without each "
        "user's last k training items, and the text is fused only at those k targets "
        "(0: at every position, though the rationale has seen those targets).",
    )
    rationale_items: int = Field(
        0,
        ge=0,
        description="Methods that read the items a rationale was written from (the history "
        "control): how many of the most recent the prompt showed (0: all before the cut).",
    )
    test_protocols: tuple[Literal["full", "sampled"], ...] = Field(
        ("full", "sampled"), description="Protocols of the final test evaluation."
    )
    sampled_negatives: int = Field(
        100,
        ge=1,
        description="Negatives per target of the sampled protocol (SLIM's paper: 100; "
        "LLM-SRec's: 99).",
    )
    seed: int = Field(0, description="Seeds initialisation, batch order and sampled negatives.")
    threads: int | None = Field(None, ge=1, description=THREADS)
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
