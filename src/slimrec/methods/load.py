"""Load the trained model of any run folder, whichever method trained it.

A run's ``config.yaml`` names its method (none: a plain backbone of ``slimrec train``);
that method, configured as it was trained (``structure.json``), rebuilds the model from
``best.pt``.
"""

from __future__ import annotations

import json
from pathlib import Path

from slimrec.backbones import SequentialRecommender
from slimrec.config import load_yaml
from slimrec.errors import ConfigError
from slimrec.methods.base import get_method
from slimrec.methods.fitting import STRUCTURE
from slimrec.training import TrainConfig, load_trained
from slimrec.training.trainer import MODEL_FILE


def has_model(run: str | Path) -> bool:
    """Whether the run folder holds its model's weights, not only its record (results,
    per-user metrics: what a long run commits, bench/runs/README.md)."""
    return (Path(run) / MODEL_FILE).is_file()


def load_model(run: str | Path, *, device: str = "cpu") -> SequentialRecommender:
    """The best model of a finished or interrupted run folder, in eval mode."""
    run = Path(run)
    if not has_model(run):
        if (run / "results.json").is_file():
            raise ConfigError(
                f"the run's results are here but not its weights ({MODEL_FILE}): it was "
                "fitted on another machine and only its record travelled",
                where=run,
                fix="delete this folder and run `slimrec run` again to fit it here",
            )
        raise ConfigError(
            f"no {MODEL_FILE}: not a trained run", where=run, fix="run `slimrec train`"
        )
    method = load_yaml(TrainConfig, run / "config.yaml").method
    if method is None:
        return load_trained(run, device=device)
    structure = run / STRUCTURE  # the method's config as trained (runs before: its preset)
    saved = json.loads(structure.read_text()) if structure.is_file() else {}
    return get_method(method, **saved.get("config", {})).load(run, device=device)
