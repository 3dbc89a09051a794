"""SLIM's fusion of text into recommenders: user-side fusion, text matching, causal loss.

The item side ("+" backbones) lives in :mod:`slimrec.backbones.items`; this package adds
the user side of ID-based SLIM (:class:`UserTextFusion`), the ID-agnostic text-matching
model (:class:`TextMatching`), the causal-layout loss that feeds users to the fusion
(:func:`causal_loss`), :func:`build_model`, which assembles any of them, and
:func:`full_sort_with_text`, which scores a history with a rationale embedding no table
row holds (serving new histories).
"""

from slimrec.fusion.build import build_model, text_matching_config
from slimrec.fusion.causal import causal_loss
from slimrec.fusion.matching import TextItemEncoder, TextMatching, TextMatchingConfig
from slimrec.fusion.scoring import full_sort_with_text, user_text_dim, uses_user_text
from slimrec.fusion.user import UserTextFusion

__all__ = [
    "TextItemEncoder",
    "TextMatching",
    "TextMatchingConfig",
    "UserTextFusion",
    "build_model",
    "causal_loss",
    "full_sort_with_text",
    "text_matching_config",
    "user_text_dim",
    "uses_user_text",
]
