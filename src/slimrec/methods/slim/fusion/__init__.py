"""SLIM's fusion of text into recommenders: user-side fusion and text matching.

The item side ("+" backbones) lives in :mod:`slimrec.backbones.items`; this package adds
the user side of ID-based SLIM (:class:`UserTextFusion`, trained causally through
``SequentialRecommender.sequence_loss``), the ID-agnostic text-matching model
(:class:`TextMatching`), :func:`build_model`, which assembles any of them, and
:func:`full_sort_with_text`, which scores a history with a rationale embedding no table
row holds (serving new histories).
"""

from slimrec.methods.slim.fusion.build import build_model, text_matching_config
from slimrec.methods.slim.fusion.matching import TextItemEncoder, TextMatching, TextMatchingConfig
from slimrec.methods.slim.fusion.scoring import full_sort_with_text, user_text_dim, uses_user_text
from slimrec.methods.slim.fusion.user import UserTextFusion

__all__ = [
    "TextItemEncoder",
    "TextMatching",
    "TextMatchingConfig",
    "UserTextFusion",
    "build_model",
    "full_sort_with_text",
    "text_matching_config",
    "user_text_dim",
    "uses_user_text",
]
