"""ID-based sequential recommenders behind one interface, and SLIM's "+" variants.

``build_backbone("sasrec", n_items)`` gives a plain SASRec; ``build_backbone("sasrec+",
n_items, text_emb=...)`` the same backbone over SLIM's text-fused item table
(:class:`~slimrec.backbones.items.TextFusedItemEncoder`). The registry is explicit on
purpose: adding a backbone means one file plus one line here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import Tensor

from slimrec.backbones.base import BackboneConfig, SequentialRecommender
from slimrec.backbones.caser import Caser, CaserConfig
from slimrec.backbones.gru4rec import GRU4Rec, GRU4RecConfig
from slimrec.backbones.items import IdItemEncoder, ItemEncoder, TextFusedItemEncoder
from slimrec.backbones.sasrec import SASRec, SASRecConfig
from slimrec.backbones.srgnn import SRGNN, SRGNNConfig
from slimrec.errors import ConfigError

BACKBONES: dict[str, tuple[type[SequentialRecommender], type[BackboneConfig]]] = {
    "caser": (Caser, CaserConfig),
    "gru4rec": (GRU4Rec, GRU4RecConfig),
    "sasrec": (SASRec, SASRecConfig),
    "srgnn": (SRGNN, SRGNNConfig),
}


def make_config(name: str, config: dict[str, Any] | BackboneConfig | None = None) -> BackboneConfig:
    """The typed config of backbone ``name`` (without "+") from a dict of overrides."""
    cls = BACKBONES[name][1]
    if isinstance(config, BackboneConfig):
        if not isinstance(config, cls):
            raise ConfigError(
                f"{type(config).__name__} given for backbone {name!r}",
                fix=f"pass a {cls.__name__} or a dict",
            )
        return config
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config or {}) - fields)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {unknown} for backbone {name!r}",
            fix=f"use some of {sorted(fields)}",
        )
    cfg = cls(**(config or {}))
    if cfg.loss not in ("ce", "bce"):
        raise ConfigError(f"loss must be 'ce' or 'bce', got {cfg.loss!r}")
    if cfg.dim <= 0 or cfg.n_negatives <= 0 or not 0.0 <= cfg.dropout < 1.0:
        raise ConfigError(
            f"invalid {name} config: {cfg}",
            fix="dim and n_negatives must be positive, 0 <= dropout < 1",
        )
    if isinstance(cfg, SASRecConfig) and cfg.dim % cfg.n_heads:
        raise ConfigError(f"dim ({cfg.dim}) is not divisible by n_heads ({cfg.n_heads})")
    if isinstance(cfg, CaserConfig) and (
        cfg.window < 1 or cfg.n_h < 0 or cfg.n_v < 0 or cfg.n_h + cfg.n_v == 0
    ):
        raise ConfigError(
            f"invalid caser config: {cfg}",
            fix="window >= 1; n_h and n_v >= 0, at least one of them positive",
        )
    return cfg


def backbone_revision(name: str) -> int:
    """Revision of backbone ``name`` (with or without "+"); 1 for a name not registered."""
    entry = BACKBONES.get(name.strip().lower().removesuffix("+"))
    return entry[0].revision if entry else 1


def build_backbone(
    name: str,
    n_items: int,
    config: dict[str, Any] | BackboneConfig | None = None,
    text_emb: Tensor | None = None,
) -> SequentialRecommender:
    """Build backbone ``name`` (caser, gru4rec, sasrec, srgnn; each optionally with "+").

    A trailing "+" selects SLIM's text-fused item encoder and requires ``text_emb``
    ``[n_items + 1, d_text]`` (row ``i`` = embedding of item ``i``'s own text).
    """
    key = name.strip().lower()
    fused = key.endswith("+")
    base = key.removesuffix("+")
    if base not in BACKBONES:
        raise ConfigError(
            f"unknown backbone {name!r}",
            fix=f"use one of {sorted(BACKBONES)}, optionally with a trailing '+'",
        )
    if n_items <= 0:
        raise ConfigError(f"n_items must be positive, got {n_items}")
    cfg = make_config(base, config)
    encoder: ItemEncoder
    if fused:
        if text_emb is None:
            raise ConfigError(
                f"backbone {name!r} needs item text embeddings",
                fix=f"pass text_emb, or use {base!r} for ID-only items",
            )
        if text_emb.dim() != 2 or text_emb.shape[0] != n_items + 1:
            raise ConfigError(
                f"text_emb has shape {list(text_emb.shape)}, expected [{n_items + 1}, d_text]",
                fix="one row per item id 0..n_items (row 0 is padding)",
            )
        encoder = TextFusedItemEncoder(n_items, cfg.dim, text_emb, dropout=cfg.dropout)
    else:
        if text_emb is not None:
            raise ConfigError(
                f"text_emb given but backbone {name!r} does not use it",
                fix=f"use {base + '+'!r} for the text-fused variant",
            )
        encoder = IdItemEncoder(n_items, cfg.dim)
    cls = BACKBONES[base][0]
    return cls(n_items, cfg, item_encoder=encoder)


__all__ = [
    "BACKBONES",
    "SRGNN",
    "BackboneConfig",
    "Caser",
    "CaserConfig",
    "GRU4Rec",
    "GRU4RecConfig",
    "IdItemEncoder",
    "ItemEncoder",
    "SASRec",
    "SASRecConfig",
    "SRGNNConfig",
    "SequentialRecommender",
    "TextFusedItemEncoder",
    "backbone_revision",
    "build_backbone",
    "make_config",
]
