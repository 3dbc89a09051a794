"""The baselines every LLM method is measured against: the plain backbone and Backbone+.

``backbone`` is the ID-based sequential recommender alone (SASRec, GRU4Rec, SR-GNN, Caser);
``backbone+`` the same backbone over SLIM's text-fused item table
``z_i = g_f([g_l(z_text_i); z_id_i])`` (Wang et al., WWW 2024, Sec. 3.3; the paper's
"SASRec+"), which isolates what item text alone gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import Field

from slimrec.backbones import SequentialRecommender, build_backbone
from slimrec.config import load_yaml
from slimrec.errors import ConfigError
from slimrec.methods.base import FitContext, Method, MethodConfig, Needs, register_method
from slimrec.methods.fitting import check_backbone_options, trainer_config
from slimrec.training import ModelRecipe, TrainConfig, Trainer
from slimrec.training.recipe import as_table, backbone_options, fingerprint, revision_key
from slimrec.training.trainer import MODEL_FILE, backbone_from_state


class BackboneConfig(MethodConfig):
    """``item_text``: items are text-fused (Backbone+), else ID embeddings only."""

    item_text: bool = Field(False, description="Text-fused items (Backbone+).")


class Backbone(Method[BackboneConfig]):
    """A backbone trained as it is, or over text-fused items."""

    config_cls = BackboneConfig

    def needs(self) -> Needs:
        return Needs(item_text=self.config.item_text)

    def check(self, train: TrainConfig) -> None:
        check_backbone_options(trainer_config(self.name, train))

    def fit(self, context: FitContext, out: Path) -> dict[str, Any]:
        cfg = trainer_config(self.name, context.train)
        items = context.item_text if self.config.item_text else None
        if self.config.item_text and items is None:
            raise ConfigError(
                f"method {self.name!r} needs item text embeddings",
                fix="use slimrec.text.item_embedding_table",
            )
        name = cfg.backbone + ("+" if self.config.item_text else "")
        recipe = ModelRecipe(
            build=lambda data: build_backbone(
                name, data.n_items, backbone_options(cfg), as_table(items)
            ),
            key=(fingerprint(items), *revision_key(cfg.backbone)),
            structure={"method": self.name, "fusion": None, "config": self.config.model_dump()},
        )
        return {
            **Trainer(cfg, out, recipe, warm_starts=context.warm_starts).fit(context.data),
            "method": self.name,
        }

    def load(self, folder: Path, *, device: str = "cpu") -> SequentialRecommender:
        cfg = load_yaml(TrainConfig, folder / "config.yaml")
        state = torch.load(folder / MODEL_FILE, map_location=device)
        return backbone_from_state(cfg, state, device)


register_method("backbone", BackboneConfig, Backbone, description="the plain ID-based backbone")
register_method(
    "backbone+",
    BackboneConfig,
    Backbone,
    description="the backbone over text-fused items z_i = g_f([g_l(z_text_i); z_id_i])",
    item_text=True,
)
