"""Training of backbones: example layouts, the typed config, and the resumable trainer."""

from slimrec.training.config import TrainConfig
from slimrec.training.trainer import Trainer, load_trained

__all__ = ["TrainConfig", "Trainer", "load_trained"]
