"""What every method trained by the shared trainer does alike.

A method's fit runs :class:`~slimrec.training.Trainer` with ``train`` turned into the
trainer's config by :func:`trainer_config` (``method`` set to the method's name, the
base backbone named), and saves its model's structure beside ``best.pt``
(:data:`STRUCTURE`). :func:`check_backbone_options` refuses, before anything runs, model
options the backbone does not know.
"""

from __future__ import annotations

from typing import Any

from slimrec.backbones import BACKBONES, make_config
from slimrec.errors import ConfigError
from slimrec.training import TrainConfig
from slimrec.training.recipe import backbone_options
from slimrec.training.trainer import STRUCTURE

__all__ = ["STRUCTURE", "check_backbone_options", "trainer_config"]


def trainer_config(method: str, train: TrainConfig) -> TrainConfig:
    """``train`` with ``method`` set; refuses a '+' backbone or another method's name."""
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
    return train.model_copy(update=update)


def check_backbone_options(train: TrainConfig) -> None:
    """Refuse an unknown backbone or model option of ``train`` (one line, before any run)."""
    base = train.backbone.strip().lower().removesuffix("+")
    if base not in BACKBONES:
        raise ConfigError(
            f"unknown backbone {train.backbone!r}", fix=f"use one of {sorted(BACKBONES)}"
        )
    make_config(base, backbone_options(train))
