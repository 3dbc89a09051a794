"""Train one of SLIM's methods on a prepared dataset with the shared trainer.

:func:`fit_method` turns a method name and a base training config into the trainer's
config (``method`` set, ``backbone`` the base sasrec/gru4rec/srgnn), checks the text
inputs the method needs, and runs :class:`~slimrec.training.Trainer` (seeded, early
stopped on validation NDCG@10, resumable, reused when finished).

Training examples: ID-based methods use the backbone's usual layout (causal windows for
SASRec/GRU4Rec, the user's text fused into every position; prefixes for SR-GNN). Text
matching has no sequence model: its user vector depends on the user only, so it trains
on the prefix pairs (user -> each next item of the training part), one cross-entropy term
over the catalog per pair -- the user's training items as (repeated) targets of one
user-level representation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimrec.data.prepared import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.methods.specs import method_spec
from slimrec.methods.tables import text_control
from slimrec.training import TrainConfig, Trainer


def method_config(method: str, train: TrainConfig) -> TrainConfig:
    """``train`` with ``method`` set; refuses a '+' backbone or another method."""
    method_spec(method)
    if train.method not in (None, method):
        raise ConfigError(
            f"the training config names method {train.method!r}, not {method!r}",
            fix="leave `method` out of the training config",
        )
    base = train.backbone.strip().lower()
    if base.endswith("+"):
        raise ConfigError(
            f"backbone {train.backbone!r}: give the base backbone, the method picks the variant",
            fix=f"use backbone {base.removesuffix('+')!r} with method 'backbone+'",
        )
    update: dict[str, Any] = {"method": method, "backbone": base}
    if method_spec(method).id_agnostic and train.layout == "causal":
        update["layout"] = "prefix"  # no sequence model: nothing to run causally
    return train.model_copy(update=update)


def fit_method(
    method: str,
    data: PreparedDataset,
    train: TrainConfig,
    out: Path,
    *,
    item_text: np.ndarray | None,
    user_text: np.ndarray | None,
) -> dict[str, Any]:
    """Train ``method`` into run folder ``out``; the trainer's results plus ``"method"``.

    ``item_text`` ``[n_items + 1, d]`` (row 0 padding) and ``user_text`` ``[n_users, d]``
    are required when the method uses them and ignored otherwise, so a caller may pass
    the same tables to every method. A control method (``slim-zero-text``,
    ``slim-shuffled-text``) replaces ``user_text`` here, seeded by the training seed.
    """
    spec = method_spec(method)
    cfg = method_config(method, train)
    for needed, given, what, fix in (
        (spec.item_text, item_text, "item", "slimrec.text.item_embedding_table"),
        (spec.user_text, user_text, "user", "slimrec.methods.user_text_table"),
    ):
        if needed and given is None:
            raise ConfigError(f"method {method!r} needs {what} text embeddings", fix=f"use {fix}")
    if spec.control is not None and user_text is not None:
        user_text = text_control(user_text, spec.control, seed=cfg.seed)
    trainer = Trainer(
        cfg,
        out,
        text_emb=item_text if spec.item_text else None,
        user_text=user_text if spec.user_text else None,
    )
    return {**trainer.fit(data), "method": method}
