"""SLIM's recommender methods: registry, text inputs, training and recommendation.

``METHODS`` names every compared variant (plain backbone, "+" items, ID-based SLIM with
student or teacher rationales or one rationale step, ID-agnostic text matching);
:func:`user_text_table` embeds a rationale file into one row per user;
:func:`fit_method` trains a method with the shared trainer; :func:`recommend` ranks items
for users from a trained run.
"""

from slimrec.methods.fit import fit_method, method_config
from slimrec.methods.recommend import recommend
from slimrec.methods.specs import METHODS, TEXT_FIELDS, MethodSpec, method_spec
from slimrec.methods.tables import user_text_table, user_texts

__all__ = [
    "METHODS",
    "TEXT_FIELDS",
    "MethodSpec",
    "fit_method",
    "method_config",
    "method_spec",
    "recommend",
    "user_text_table",
    "user_texts",
]
