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


def load_model(run: str | Path, *, device: str = "cpu") -> SequentialRecommender:
    """The best model of a finished or interrupted run folder, in eval mode."""
    run = Path(run)
    if not (run / "best.pt").is_file():
        raise ConfigError("no best.pt: not a trained run", where=run, fix="run `slimrec train`")
    method = load_yaml(TrainConfig, run / "config.yaml").method
    if method is None:
        return load_trained(run, device=device)
    structure = run / STRUCTURE  # the method's config as trained (runs before: its preset)
    saved = json.loads(structure.read_text()) if structure.is_file() else {}
    return get_method(method, **saved.get("config", {})).load(run, device=device)
