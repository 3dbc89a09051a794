"""The interface every recommender method implements, and the registry that names them.

peft's pattern (``register_peft_method(name, config_cls, model_cls)``): each method is a
module with its own typed config (a pydantic :class:`MethodConfig`) and a :class:`Method`
class, and registers itself explicitly with :func:`register_method`. A registered *name*
is a method class plus preset config values, so a family's variants (``slim``,
``slim-gate``, ``slim-zero-text``) are one class with different settings, and a run's
config may override any field of a method's config (checked when the config loads).

A method declares what it consumes (:class:`Needs`: item text, a user-text table of
(rationale source, field), ...), and the pipeline builds exactly those stages; it turns
them into a trained model in a run folder (:meth:`Method.fit`) and loads that folder back
as a scorer (:meth:`Method.load`): any :class:`~slimrec.backbones.SequentialRecommender`,
whose ``full_sort_predict`` / ``predict`` every protocol, report and server uses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from slimrec.backbones import SequentialRecommender
from slimrec.data.prepared import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.training import TrainConfig


class MethodConfig(BaseModel):
    """Base of every method's typed settings (unknown fields are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Needs:
    """What a method consumes besides the prepared data and the training settings.

    ``user_text``: ``(source, field)`` of the rationale table it reads (``source``
    ``teacher`` or ``student``; ``field`` the whole ``response`` or one step).
    ``per_backbone``: fitted once per ID backbone (False: it has none, fitted once).
    ``teacher``: the registered method whose trained run (same backbone and seed) it
    learns from, e.g. ``"backbone"`` (LLM-SRec distils the plain SASRec).
    ``items_read``: it reads the history items each rationale's prompt showed; the run
    then sets ``TrainConfig.rationale_items`` to the prompt's ``max_items``.
    """

    item_text: bool = False
    user_text: tuple[str, str] | None = None
    per_backbone: bool = True
    teacher: str | None = None
    items_read: bool = False


@dataclass
class FitContext:
    """Everything a method may train from; tables it does not need may be None.

    ``item_text`` ``[n_items + 1, d]`` (row 0 padding), ``user_text`` ``[n_users, d]``
    (one row per dense user index), ``teacher`` the folder of the trained teacher run;
    ``warm_starts`` folders of earlier fits of the same model a fit may go on from (see
    :class:`~slimrec.training.Trainer`).
    """

    data: PreparedDataset
    train: TrainConfig
    item_text: np.ndarray | None = None
    user_text: np.ndarray | None = None
    teacher: Path | None = None
    warm_starts: tuple[Path, ...] = ()


C = TypeVar("C", bound=MethodConfig)


class Method(ABC, Generic[C]):
    """One configured method: ``Method(name, config)``. Subclasses set ``config_cls``."""

    config_cls: ClassVar[type[MethodConfig]]
    # False for a method that scores only candidate lists (DELRec writes them in its
    # prompt): full ranking, top-k recommendation and catalogue-wide analyses skip it.
    ranks_catalogue: ClassVar[bool] = True

    def __init__(self, name: str, config: C, description: str = ""):
        self.name = name
        self.config = config
        self.description = description

    @abstractmethod
    def needs(self) -> Needs:
        """The inputs the pipeline must build before :meth:`fit`."""

    @abstractmethod
    def check(self, train: TrainConfig) -> None:
        """Refuse, before anything runs, training settings this method cannot use
        (e.g. an option no model of it knows). ``train.backbone`` is set."""

    @abstractmethod
    def fit(self, context: FitContext, out: Path) -> dict[str, Any]:
        """Train into run folder ``out`` (resumable; reused when finished); the results
        (``best_epoch``, ``epochs_run``, ``valid``, ``test`` per protocol, ...)."""

    @abstractmethod
    def load(self, folder: Path, *, device: str = "cpu") -> SequentialRecommender:
        """The trained model of run folder ``folder``, in eval mode."""

    def stage_inputs(self) -> dict[str, Any]:
        """What besides the method's name and the training config keys its fit stage
        (values that change what is trained). Empty for a method's defaults."""
        return {}


@dataclass(frozen=True)
class Registered:
    """A registered name: the method class, its config class and the preset values."""

    name: str
    config_cls: type[MethodConfig]
    method_cls: type[Method]
    description: str
    preset: dict[str, Any]

    def build(self, **overrides: Any) -> Method:
        """The method with its preset config, updated by ``overrides`` (validated)."""
        try:
            config = self.config_cls(**_merge(self.preset, overrides))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(config)"
            raise ConfigError(
                f"method {self.name!r}: {where}: {first['msg']}",
                fix=f"valid fields: {sorted(self.config_cls.model_fields)}",
            ) from e
        return self.method_cls(self.name, config, self.description)


def _merge(preset: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``preset`` updated by ``overrides``, section by section (a run's ``stage1: {epochs:
    2}`` keeps a preset's ``stage1.tasks``)."""
    merged = dict(preset)
    for name, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = _merge(merged[name], value)
        else:
            merged[name] = value
    return merged


METHODS: dict[str, Registered] = {}


def register_method(
    name: str,
    config_cls: type[MethodConfig],
    method_cls: type[Method],
    *,
    description: str,
    **preset: Any,
) -> None:
    """Register ``name`` as ``method_cls`` with ``config_cls(**preset)`` as its defaults.

    The preset is validated now, so a broken registration fails at import.
    """
    if name in METHODS:
        raise ValueError(f"method {name!r} is registered twice")
    if not issubclass(config_cls, method_cls.config_cls):
        raise TypeError(f"{method_cls.__name__} takes {method_cls.config_cls.__name__}")
    entry = Registered(name, config_cls, method_cls, description, dict(preset))
    entry.build()
    METHODS[name] = entry


def get_method(name: str, **overrides: Any) -> Method:
    """Method ``name`` (with config ``overrides``), or a one-line error naming the known ones."""
    entry = METHODS.get(name)
    if entry is None:
        raise ConfigError(f"unknown method {name!r}", fix=f"use one of {sorted(METHODS)}")
    return entry.build(**overrides)
