"""Build a recommender from its structure: backbone, item side, user side.

One function used both to create a model for training and to rebuild it from a run folder,
so the two can never disagree. The structure is given explicitly:

* ``item_text`` given: SLIM's text-fused items (the "+" encoder) -- or, when
  ``id_agnostic``, the text-only items of :class:`~.matching.TextMatching`;
* ``user_text`` given: SLIM's user-side fusion (:class:`~.user.UserTextFusion`) -- or
  the text-only users of text matching.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from torch import Tensor

from slimrec.backbones import BACKBONES, SequentialRecommender, build_backbone, make_config
from slimrec.errors import ConfigError
from slimrec.methods.slim.fusion.matching import TextMatching, TextMatchingConfig
from slimrec.methods.slim.fusion.user import UserTextFusion
from slimrec.training.recipe import as_table


def text_matching_config(options: dict[str, Any]) -> TextMatchingConfig:
    """Typed :class:`TextMatchingConfig` from the run's model options (unknown ones refused)."""
    fields = {f.name for f in dataclasses.fields(TextMatchingConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for text-matching",
            fix=f"use some of {sorted(fields)}",
        )
    cfg = TextMatchingConfig(**options)
    if cfg.loss not in ("ce", "bce") or cfg.dim <= 0 or cfg.layers < 1 or cfg.n_negatives < 1:
        raise ConfigError(f"invalid text-matching config: {cfg}")
    return cfg


def text_matching_options(backbone: str, options: dict[str, Any]) -> TextMatchingConfig:
    """Text matching's config from a run's model options, which also serve ``backbone``.

    The named backbone's own options (n_layers, max_len, ...) do not apply to text
    matching, so one training config serves every method; anything else is refused.
    """
    base = backbone.strip().lower().removesuffix("+")
    own = {f.name for f in dataclasses.fields(BACKBONES[base][1])} if base in BACKBONES else set()
    keep = {f.name for f in dataclasses.fields(TextMatchingConfig)}
    return text_matching_config({k: v for k, v in options.items() if k in keep or k not in own})


def build_model(
    backbone: str,
    n_items: int,
    options: dict[str, Any],
    *,
    item_text: np.ndarray | Tensor | None = None,
    user_text: np.ndarray | Tensor | None = None,
    id_agnostic: bool = False,
    fusion: str = "concat",
) -> SequentialRecommender:
    """The model with the given structure (see the module docstring).

    ``backbone`` is a base name (sasrec, gru4rec, srgnn; ignored when ``id_agnostic``),
    ``item_text`` ``[n_items + 1, d]`` (row 0 padding), ``user_text`` ``[n_users, d]``,
    ``fusion`` the user-side design (:data:`slimrec.methods.slim.fusion.user.FUSION_DESIGNS`).
    """
    items, users = as_table(item_text), as_table(user_text)
    if id_agnostic:
        if items is None or users is None:
            raise ConfigError(
                "text matching needs both item and user text embeddings",
                fix="pass item_text and user_text",
            )
        if items.shape[0] != n_items + 1:
            raise ConfigError(
                f"item_text has {items.shape[0]} rows, expected n_items + 1 = {n_items + 1}"
            )
        return TextMatching(items, users, text_matching_options(backbone, options))
    base = backbone.strip().lower()
    if base.endswith("+"):
        raise ConfigError(
            f"backbone {backbone!r}: give the base name, the method decides the '+' variant",
            fix=f"use {base.removesuffix('+')!r}",
        )
    model = build_backbone(base + ("+" if items is not None else ""), n_items, options, items)
    if users is not None:
        dropout = make_config(base, options).dropout
        model.user_fusion = UserTextFusion(users, model.dim, dropout=dropout, design=fusion)
    return model
