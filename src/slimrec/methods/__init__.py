"""Recommender methods behind one interface: a registry of named, configured methods.

:mod:`slimrec.methods.base` defines the interface (:class:`Method`, its typed
:class:`MethodConfig`, :class:`Needs`) and :func:`register_method`; each family lives in
its own module or folder and registers its names on import: the baselines
(:mod:`slimrec.methods.backbone`: ``backbone``, ``backbone+``) and SLIM
(:mod:`slimrec.methods.slim`: ``slim``, ``slim-``, its fusion designs, step ablations,
text controls and ``text-matching``), LLM-SRec (:mod:`slimrec.methods.llmsrec`) and
DELRec (:mod:`slimrec.methods.delrec`). :func:`fit_method` trains any of them,
:func:`load_model` loads any run folder, :func:`recommend` ranks items from one.
"""

from slimrec.methods import backbone, delrec, llmsrec, slim  # noqa: F401  (each registers its names)
from slimrec.methods.base import (
    METHODS,
    FitContext,
    Method,
    MethodConfig,
    Needs,
    Registered,
    get_method,
    register_method,
)
from slimrec.methods.fit import fit_method
from slimrec.methods.load import has_model, load_model
from slimrec.methods.recommend import recommend
from slimrec.methods.slim import TEXT_FIELDS, user_text_table, user_texts

__all__ = [
    "METHODS",
    "TEXT_FIELDS",
    "FitContext",
    "Method",
    "MethodConfig",
    "Needs",
    "Registered",
    "fit_method",
    "get_method",
    "has_model",
    "load_model",
    "recommend",
    "register_method",
    "user_text_table",
    "user_texts",
]
