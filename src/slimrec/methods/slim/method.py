"""SLIM's recommenders (Wang et al., WWW 2024, Sec. 3.3) trained by the shared trainer.

ID-based SLIM is the backbone over text-fused items ``z_i = g_f([g_l(z_text_i); z_id_i])``
(the "+" item encoder) with the user's rationale embedding fused into the user vector
(:class:`~slimrec.methods.slim.fusion.UserTextFusion`); ID-agnostic SLIM matches the
rationale to item texts (:class:`~slimrec.methods.slim.fusion.TextMatching`).

Training examples: ID-based variants use the backbone's usual layout (causal windows for
SASRec/GRU4Rec, the user's text fused into every position whose target the rationale has
not seen; prefixes for SR-GNN). Text matching has no sequence model: its user vector
depends on the user only, so it trains on the prefix pairs (user -> each next item of the
training part) whose targets its rationale has not seen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from slimrec.backbones import SequentialRecommender
from slimrec.config import load_yaml
from slimrec.data.prepared import items_read, rationale_cutoff
from slimrec.errors import ConfigError
from slimrec.methods.base import FitContext, Method, Needs
from slimrec.methods.fitting import STRUCTURE, check_backbone_options, trainer_config
from slimrec.methods.slim.config import SlimConfig
from slimrec.methods.slim.fusion.build import build_model, text_matching_options
from slimrec.methods.slim.tables import text_control
from slimrec.training import ModelRecipe, TrainConfig, Trainer
from slimrec.training.recipe import backbone_options, fingerprint, revision_key
from slimrec.training.trainer import MODEL_FILE


class Slim(Method[SlimConfig]):
    """ID-based SLIM or, with ``id_agnostic``, text matching (see :class:`SlimConfig`)."""

    config_cls = SlimConfig

    def needs(self) -> Needs:
        c = self.config
        return Needs(
            item_text=True,
            user_text=(c.rationales, c.field),
            per_backbone=not c.id_agnostic,
            items_read=c.control == "history",
        )

    def fusion(self) -> str | None:
        """The user-side design (None: text matching has no fusion)."""
        return None if self.config.id_agnostic else self.config.fusion

    def stage_inputs(self) -> dict[str, Any]:
        fusion = self.fusion()
        return {"fusion": fusion} if fusion not in (None, "concat") else {}  # concat: old keys

    def train_config(self, train: TrainConfig) -> TrainConfig:
        cfg = trainer_config(self.name, train)
        if self.config.id_agnostic and cfg.layout == "causal":
            cfg = cfg.model_copy(update={"layout": "prefix"})  # no sequence model
        return cfg

    def check(self, train: TrainConfig) -> None:
        cfg = self.train_config(train)
        if self.config.id_agnostic:
            text_matching_options(cfg.backbone, backbone_options(cfg))
        else:
            check_backbone_options(cfg)

    def fit(self, context: FitContext, out: Path) -> dict[str, Any]:
        cfg = self.train_config(context.train)
        items, users = context.item_text, context.user_text
        for given, what, fix in (
            (items, "item", "slimrec.text.item_embedding_table"),
            (users, "user", "slimrec.methods.slim.user_text_table"),
        ):
            if given is None:
                raise ConfigError(
                    f"method {self.name!r} needs {what} text embeddings", fix=f"use {fix}"
                )
        assert items is not None and users is not None
        if len(users) != context.data.n_users:
            raise ConfigError(
                f"user text has {len(users)} rows but the dataset {context.data.n_users} users",
                where=out,
                fix="embed the rationales of this prepared dataset (one row per user index)",
            )
        if (control := self.config.control) is not None:
            read = future = None
            if control in ("history", "oracle"):  # the items before / after each rationale's cut
                cuts = [
                    rationale_cutoff(len(s) - 2, cfg.rationale_holdout)
                    for s in context.data.sequences
                ]
                read = [
                    items_read(s[:cut], cfg.rationale_items)
                    for s, cut in zip(context.data.sequences, cuts, strict=True)
                ]
                future = [s[cut:] for s, cut in zip(context.data.sequences, cuts, strict=True)]
            users = text_control(
                users,
                control,
                seed=cfg.seed,
                item_text=items,
                read=read,
                future=future,
                share=self.config.oracle_share,
            )
        fusion = self.fusion()
        recipe = ModelRecipe(
            build=lambda data: build_model(
                cfg.backbone,
                data.n_items,
                backbone_options(cfg),
                item_text=items,
                user_text=users,
                id_agnostic=self.config.id_agnostic,
                fusion=fusion or "concat",
            ),
            key=(fingerprint(items), fingerprint(users), *revision_key(cfg.backbone))
            + ((("fusion", fusion),) if fusion not in (None, "concat") else ()),
            structure={"method": self.name, "fusion": fusion, "config": self.config.model_dump()},
        )
        return {
            **Trainer(cfg, out, recipe, warm_starts=context.warm_starts).fit(context.data),
            "method": self.name,
        }

    def load(self, folder: Path, *, device: str = "cpu") -> SequentialRecommender:
        cfg = load_yaml(TrainConfig, folder / "config.yaml")
        state = torch.load(folder / MODEL_FILE, map_location=device)
        # The frozen text tables travel in the state dict (buffers).
        item_text = state.get("item_encoder.text_emb")
        ids = state.get("item_encoder.id_embedding.weight")
        n_items = (ids if ids is not None else item_text).shape[0] - 1
        structure = folder / STRUCTURE
        # Runs from before structure.json existed all used the paper's concat fusion.
        saved = json.loads(structure.read_text()) if structure.is_file() else {}
        model = build_model(
            cfg.backbone,
            n_items,
            backbone_options(cfg),
            item_text=item_text,
            user_text=state.get("user_text", state.get("user_fusion.user_text")),
            id_agnostic=self.config.id_agnostic,
            fusion=saved.get("fusion") or "concat",
        )
        model.load_state_dict(state)
        return model.to(device).eval()
