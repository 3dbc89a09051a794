"""SLIM's fusion of text into recommenders: user-side fusion, text matching, causal loss.

The item side ("+" backbones) lives in :mod:`slimrec.backbones.items`; this package adds
the user side of ID-based SLIM (:class:`UserTextFusion`), the ID-agnostic text-matching
model (:class:`TextMatching`), the causal-layout loss that feeds users to the fusion
(:func:`causal_loss`), and :func:`build_model`, which assembles any of them.
"""

from slimrec.fusion.build import build_model, text_matching_config
from slimrec.fusion.causal import causal_loss
from slimrec.fusion.matching import TextItemEncoder, TextMatching, TextMatchingConfig
from slimrec.fusion.user import UserTextFusion

__all__ = [
    "TextItemEncoder",
    "TextMatching",
    "TextMatchingConfig",
    "UserTextFusion",
    "build_model",
    "causal_loss",
    "text_matching_config",
]
