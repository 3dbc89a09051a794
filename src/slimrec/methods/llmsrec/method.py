"""LLM-SRec as a registered method: a frozen LLM distilled towards a trained SASRec.

Its teacher is the run's own ``backbone`` fit on the same backbone and seed (the pipeline
trains it, or reuses it when ``backbone`` is listed too). Training goes through the
shared trainer (resumable, early stopped on validation NDCG@10, tested under every
protocol) with one pair per user and epoch by default (each user's last training item,
as the authors' code), in the prefix layout; the run folder keeps only the trainable parts,
the teacher's folder (relative) and the item titles, so :meth:`LLMSRecMethod.load`
rebuilds the model with the same LLM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from slimrec.backbones import SequentialRecommender
from slimrec.data import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.io import write_json_atomic
from slimrec.llm.backends.hf import model_identity
from slimrec.llm.soft_prompt import FrozenLM
from slimrec.methods.base import FitContext, Method, Needs
from slimrec.methods.fitting import STRUCTURE, check_backbone_options, trainer_config
from slimrec.methods.llmsrec.config import LLMSRecConfig
from slimrec.methods.llmsrec.model import PROMPT_VERSION, LLMSRec
from slimrec.methods.load import load_model
from slimrec.training import ModelRecipe, TrainConfig, Trainer
from slimrec.training.config import monitor_cutoff
from slimrec.training.trainer import MODEL_FILE

TITLES = "titles.json"


class LLMSRecMethod(Method[LLMSRecConfig]):
    """See the module docstring."""

    config_cls = LLMSRecConfig

    def needs(self) -> Needs:
        return Needs(teacher="backbone")

    def distils(self) -> bool:
        return bool(self.config.distill_weight or self.config.uniform_weight)

    def train_config(self, train: TrainConfig) -> TrainConfig:
        c = self.config
        update = {"epochs": c.epochs, "batch_size": c.batch_size, "lr": c.lr}
        update |= {"lr_decay": c.lr_decay} | ({"monitor": c.monitor} if c.monitor else {})
        # Its patience counts epochs: the run's min_patience_steps (500, made for ID
        # backbones' short epochs) would outlast ten of its 61-step epochs on amazon-office.
        update |= {"patience": c.patience, "min_patience_steps": 0}
        update |= {"pairs": c.pairs, "layout": "prefix"}
        return trainer_config(self.name, train).model_copy(update=update)

    def check(self, train: TrainConfig) -> None:
        check_backbone_options(trainer_config(self.name, train))  # the teacher's options
        if self.config.monitor and monitor_cutoff(self.config.monitor) not in train.ks:
            raise ConfigError(
                f"method {self.name!r}: monitor {self.config.monitor!r} is not reported",
                fix=f"use a cut-off of eval.ks {list(train.ks)}, or add it there",
            )

    def fit(self, context: FitContext, out: Path) -> dict[str, Any]:
        if context.teacher is None:
            raise ConfigError(
                f"method {self.name!r} needs a trained teacher run (the 'backbone' fit)",
                fix="train it through `slimrec run`, or pass FitContext(teacher=...)",
            )
        cfg = self.train_config(context.train)
        teacher_dir = Path(context.teacher)
        teacher_key = json.loads((teacher_dir / "results.json").read_text())["key"]
        llm = self.llm_folder()
        titles = context.data.titles()

        def build(data: PreparedDataset) -> SequentialRecommender:
            return self.build(llm, titles, teacher_dir, cfg.device)

        recipe = ModelRecipe(
            build,
            key=(
                PROMPT_VERSION,
                model_identity(str(llm)),
                teacher_key,
                self.key_settings(cfg.device),
            ),
            structure={
                "method": self.name,
                # The dtype it trained in, so that a CPU loads a GPU's bfloat16 fit as such.
                "config": self.config.model_copy(
                    update={"dtype": self.llm_dtype_name(cfg.device)}
                ).model_dump(),
                "teacher": os.path.relpath(teacher_dir, out),
                "prompt": PROMPT_VERSION,
            },
        )
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / TITLES, titles)
        return {
            **Trainer(cfg, out, recipe, warm_starts=context.warm_starts).fit(context.data),
            "method": self.name,
        }

    def llm_dtype_name(self, device: str) -> str:
        """The frozen LLM's dtype on ``device``: ``dtype``, with auto resolved."""
        from slimrec.devices import pick_device
        from slimrec.llm.local import pick_dtype

        chosen = pick_dtype(self.config.dtype, torch.device(str(pick_device(device))))
        return "bfloat16" if chosen == torch.bfloat16 else "float32"

    def key_settings(self, device: str) -> dict[str, Any]:
        """Its settings as they key a fit: not the loop's (the trainer's config keys epochs,
        patience, pairs, lr_decay and monitor; epochs and patience may change on resume),
        nor the scoring batch size (it cannot change a result); the dtype only where it
        is bfloat16, so float32 fits keep the keys they had before the option."""
        settings = self.config.model_dump(
            exclude={"epochs", "batch_size", "lr", "patience", "encode_batch_size"}
            | {"pairs", "lr_decay", "monitor", "dtype"}
        )
        if self.llm_dtype_name(device) == "bfloat16":
            settings["dtype"] = "bfloat16"
        return settings

    def llm_folder(self) -> Path:
        from slimrec.llm.local import resolve_base

        return resolve_base(self.config.llm)

    def build(
        self, llm: Path, titles: list[str], teacher_dir: Path, device: str = "cpu"
    ) -> LLMSRec:
        """The model (fresh trainable parts) over the frozen LLM and teacher."""
        from slimrec.devices import pick_device

        where = str(pick_device(device))
        teacher = load_model(teacher_dir, device=where)
        with torch.inference_mode():
            cf_items = teacher.item_encoder()
        lm = FrozenLM(llm, device=where, dtype=getattr(torch, self.llm_dtype_name(where)))
        # clone(): a tensor made under inference_mode cannot be saved for backward.
        return LLMSRec(
            lm, titles, cf_items.clone(), self.config, teacher if self.distils() else None
        )

    def load(self, folder: Path, *, device: str = "cpu") -> SequentialRecommender:
        saved = json.loads((folder / STRUCTURE).read_text())
        titles = json.loads((folder / TITLES).read_text())
        model = self.build(self.llm_folder(), titles, (folder / saved["teacher"]).resolve(), device)
        model.load_state_dict(torch.load(folder / MODEL_FILE, map_location=device))
        return model.to(device).eval()
