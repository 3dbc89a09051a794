"""The settings of a SLIM variant: which rationales, which part of them, how they are fused.

Wang et al., WWW 2024, Sec. 3.3. Every SLIM variant is this one config with other values
(registered by name in :mod:`slimrec.methods.slim`):

* ``rationales``: the student's, written for every user (SLIM), or the teacher's for the
  few users it answered (SLIM-, the paper's "ChatGPT feature" baseline; everybody else gets
  a zero text vector);
* ``field``: the whole ``response`` or one step of it (the SLIM-Step ablations);
* ``fusion``: the user-side design (:class:`slimrec.methods.slim.fusion.UserTextFusion`):
  ``fast-gate`` by default (the plain backbone at init, a gate that opens within ~100
  steps; measured against the others in docs/benchmarks.md, "SLIM fusion"), ``concat``
  as published, ``residual``, ``gate``;
* ``control``: replace the rationale embeddings before training, ``zero`` (no text at
  all), ``shuffled`` (another user's rationale) or ``history`` (the mean text of the items
  the rationale was written from): the controls that say whether the text itself helps,
  and whether the LLM's reasoning says more than the titles it read; ``oracle``, the
  positive control, replaces the rationales of an ``oracle_share`` of the users with the
  text of the items they were to name (it leaks the future by design: the ceiling of what
  a rationale could give through the fusion); ``random`` (a draw with the rationales'
  mean and covariance per user: a code that says nothing) and ``mean`` (the mean
  rationale for every user: the no-information control that can open SLIM's gate, which
  ``zero`` leaves shut): whether text that says nothing gives what the rationales give;
* ``id_agnostic``: text matching, ``g_t(user rationale) . g_t(item text)``, no IDs and no
  sequence model (its model options come from the training config's ``model``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from slimrec.methods.base import MethodConfig

Rationales = Literal["student", "teacher"]
Control = Literal["zero", "shuffled", "history", "oracle", "random", "mean"]
TextField = Literal["response", "step1", "step2", "step3"]
TEXT_FIELDS: tuple[str, ...] = ("response", "step1", "step2", "step3")
FusionDesign = Literal["concat", "residual", "gate", "fast-gate"]  # fusion/user.py says each
DEFAULT_FUSION = "fast-gate"


class SlimConfig(MethodConfig):
    """One SLIM variant (see the module docstring)."""

    rationales: Rationales = Field("student", description="Whose rationales: student | teacher.")
    field: TextField = Field("response", description="The whole response or one step.")
    fusion: FusionDesign = Field(
        DEFAULT_FUSION, description="User-side fusion design (ID-based variants)."
    )
    control: Control | None = Field(
        None,
        description="Replace the rationale embeddings: zero | shuffled | history | oracle | "
        "random | mean (controls; oracle leaks the future, a ceiling).",
    )
    oracle_share: float = Field(
        1.0, gt=0.0, le=1.0, description="The oracle control: the share of users it reaches."
    )
    id_agnostic: bool = Field(False, description="Text matching: no item IDs, no sequence model.")

    @model_validator(mode="after")
    def _share_needs_the_oracle(self) -> SlimConfig:
        if self.oracle_share != 1.0 and self.control != "oracle":
            raise ValueError("oracle_share applies only with control: oracle")
        return self
