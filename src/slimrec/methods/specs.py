"""The recommender methods compared in SLIM, as an explicit registry of small specs.

A spec says what a method's model looks like and which inputs it needs, so the pipeline
knows what to embed before training: item text embeddings (title, brand, categories,
description; :func:`slimrec.text.items.item_embedding_table`) and/or user text embeddings
of a rationale file (:func:`slimrec.methods.tables.user_text_table`) -- which file
(student or teacher rationales) and which column.

``slim`` and ``slim-`` are the same model; only the rationales differ: the student's for
every user (SLIM) or the teacher's for the few users it answered (the paper's "ChatGPT
feature" baseline; everybody else gets a zero text vector).

``fusion`` picks the user-side design (:class:`slimrec.fusion.user.UserTextFusion`):
SLIM's methods use ``residual`` (it starts as the plain backbone; measured against the
paper's ``concat`` in docs/benchmarks.md, "SLIM fusion"), ``slim-concat`` keeps the
paper's form by name and ``slim-gate`` is the gated design. ``control`` replaces the
rationale embeddings before training: ``zero`` (no text at all) or ``shuffled`` (another
user's rationale), the controls that say whether the text itself helps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from slimrec.errors import ConfigError

Rationales = Literal["student", "teacher"]
Control = Literal["zero", "shuffled"]
DEFAULT_FUSION = "residual"
TEXT_FIELDS = ("response", "step1", "step2", "step3")


@dataclass(frozen=True)
class MethodSpec:
    """What a method needs and builds."""

    description: str
    item_text: bool  # needs item text embeddings [n_items + 1, d]
    user_text: bool  # needs user text embeddings [n_users, d] (one row per user index)
    rationales: Rationales | None = None  # which rationale file the user text comes from
    field: str | None = None  # its column: the whole response, or one step (SLIM-Step)
    id_agnostic: bool = False  # True: text matching, no IDs, no sequence model
    fusion: str = DEFAULT_FUSION  # user-side design (ID-based methods with user text)
    control: Control | None = None  # replace the rationale embeddings: zero or shuffled

    def __post_init__(self) -> None:
        if self.user_text != (self.rationales is not None) or self.user_text != bool(self.field):
            raise ValueError("a method with user text names its rationales and field")
        if self.field is not None and self.field not in TEXT_FIELDS:
            raise ValueError(f"field must be one of {TEXT_FIELDS}")
        if self.id_agnostic and not (self.item_text and self.user_text):
            raise ValueError("text matching needs item and user text")
        if self.control is not None and not self.user_text:
            raise ValueError("a text control needs user text to replace")


def _slim(description: str, field: str = "response", **variant: Any) -> MethodSpec:
    """An ID-based SLIM variant over the student's rationales (``field``: which text)."""
    return MethodSpec(
        description, item_text=True, user_text=True, rationales="student", field=field, **variant
    )


def _step(n: int, what: str) -> MethodSpec:
    return _slim(f"SLIM-Step{n}: ID-based SLIM with only step {n} of the rationale ({what})",
                 field=f"step{n}")  # fmt: skip


METHODS: dict[str, MethodSpec] = {
    "backbone": MethodSpec("the plain ID-based backbone", item_text=False, user_text=False),
    "backbone+": MethodSpec(
        "the backbone over text-fused items z_i = g_f([g_l(z_text_i); z_id_i])",
        item_text=True,
        user_text=False,
    ),
    "slim": _slim(
        "ID-based SLIM: text-fused items and users s_u = s_seq_u + g_f([g_l(s_text_u); "
        "s_seq_u]) (residual, g_f zero at init), the student's rationales"
    ),
    "slim-concat": _slim(
        "ID-based SLIM as published: s_u = g_f([g_l(s_text_u); s_seq_u]) from a random "
        "init (the paper's fusion), the student's rationales",
        fusion="concat",
    ),
    "slim-gate": _slim(
        "ID-based SLIM with a gated fusion s_u = s_seq_u + tanh(a) g_l(s_text_u), a = 0 at "
        "init, the student's rationales",
        fusion="gate",
    ),
    "slim-zero-text": _slim(
        "control: SLIM with every rationale embedding set to zero (the fusion without text)",
        control="zero",
    ),
    "slim-shuffled-text": _slim(
        "control: SLIM with the rationales shuffled across users (text of someone else)",
        control="shuffled",
    ),
    "slim-": MethodSpec(
        "ID-based SLIM with the teacher's rationales (the 'ChatGPT feature' baseline)",
        item_text=True,
        user_text=True,
        rationales="teacher",
        field="response",
    ),
    "slim-step1": _step(1, "preference summary"),
    "slim-step2": _step(2, "recommended categories"),
    "slim-step3": _step(3, "suggested items"),
    "text-matching": MethodSpec(
        "ID-agnostic SLIM: g_t(user rationale) . g_t(item text), no IDs, no sequence model",
        item_text=True,
        user_text=True,
        rationales="student",
        field="response",
        id_agnostic=True,
    ),
}


def method_spec(name: str) -> MethodSpec:
    """The spec of method ``name``, or a one-line error listing the known ones."""
    spec = METHODS.get(name)
    if spec is None:
        raise ConfigError(f"unknown method {name!r}", fix=f"use one of {sorted(METHODS)}")
    return spec
