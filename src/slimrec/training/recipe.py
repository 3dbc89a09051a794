"""What the trainer trains: a model builder, and what identifies the model it builds.

The trainer knows no method. A method hands it a :class:`ModelRecipe`: ``build(data)``
makes the model (fresh, or to load ``best.pt`` into), ``key`` holds what identifies that
model beyond the training config (fingerprints of the frozen text tables it carries, a
design choice) and goes into the run's checkpoint and results keys, and ``structure`` is
saved beside ``best.pt`` (``structure.json``) so whoever loads the run rebuilds the same
model without guessing from state-dict key names. :func:`backbone_recipe` is the plain
backbone (``sasrec``, or ``sasrec+`` over item text embeddings) that ``slimrec train``
trains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from slimrec.backbones import SequentialRecommender, backbone_revision, build_backbone
from slimrec.data.prepared import PreparedDataset
from slimrec.training.config import TrainConfig


@dataclass(frozen=True)
class ModelRecipe:
    """``build(data)`` -> the model; ``key``: its identity; ``structure``: saved with it."""

    build: Callable[[PreparedDataset], SequentialRecommender]
    key: tuple[Any, ...] = ()
    structure: Mapping[str, Any] = field(default_factory=dict)


def backbone_recipe(config: TrainConfig, text_emb: np.ndarray | None = None) -> ModelRecipe:
    """``config.backbone`` as is (a trailing "+" reads ``text_emb`` ``[n_items + 1, d]``)."""
    return ModelRecipe(
        build=lambda data: build_backbone(
            config.backbone, data.n_items, backbone_options(config), as_table(text_emb)
        ),
        key=(fingerprint(text_emb), *revision_key(config.backbone)),
        structure={"method": config.method, "fusion": None},
    )


def backbone_options(config: TrainConfig) -> dict[str, Any]:
    """Backbone options; SASRec's positional table is sized to the trainer's ``max_len``."""
    options = dict(config.model)
    if config.backbone.removesuffix("+") == "sasrec":
        options.setdefault("max_len", config.max_len)
    return options


def revision_key(backbone: str) -> tuple[Any, ...]:
    """The backbone's revision once above 1 (see ``SequentialRecommender.revision``), so
    keys of runs of revision 1 stay as they were."""
    revision = backbone_revision(backbone)
    return (("backbone_revision", revision),) if revision > 1 else ()


def fingerprint(table: np.ndarray | None) -> str | None:
    """sha256 of a table's float32 bytes (None stays None)."""
    if table is None:
        return None
    blob = np.ascontiguousarray(table, dtype=np.float32).tobytes()
    return hashlib.sha256(blob).hexdigest()


def as_table(x: np.ndarray | torch.Tensor | None) -> torch.Tensor | None:
    """A float32 tensor of ``x`` (None stays None)."""
    return None if x is None else torch.as_tensor(np.asarray(x), dtype=torch.float32)
