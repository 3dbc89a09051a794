"""Training of recommenders: example layouts, the typed config, model recipes and the
resumable trainer (which trains whatever model its recipe builds)."""

from slimrec.training.config import TrainConfig
from slimrec.training.recipe import ModelRecipe, backbone_recipe
from slimrec.training.trainer import Trainer, load_trained

__all__ = ["ModelRecipe", "TrainConfig", "Trainer", "backbone_recipe", "load_trained"]
