"""DELRec (Sun & Zhang, "DELRec: Distilling Sequential Pattern to Enhance LLM-based
Recommendation", arXiv 2406.11156): a conventional SR model's patterns distilled into a
soft prompt of a frozen LLM, then the LLM tuned to pick the next item from a candidate
list -- registered here with its ablations (names proposed in ../shared/specs/delrec.md;
the paper's own ablation names were not reachable).
"""

from slimrec.methods.base import register_method
from slimrec.methods.delrec.config import DelrecConfig
from slimrec.methods.delrec.method import DelrecMethod
from slimrec.methods.delrec.model import DelrecModel

_NO_TUNE = {"adapter": "none"}

register_method(
    "delrec",
    DelrecConfig,
    DelrecMethod,
    description="DELRec: soft prompt distilled from the SR model (TA + RPS), then LoRA on "
    "'history + candidates -> next item'; candidates ranked by title likelihood",
)
register_method(
    "delrec-no-ta",
    DelrecConfig,
    DelrecMethod,
    description="DELRec without Temporal Analysis (stage 1 on RPS only)",
    stage1={"tasks": ("rps",)},
)
register_method(
    "delrec-no-rps",
    DelrecConfig,
    DelrecMethod,
    description="DELRec without Recommendation Pattern Simulating (stage 1 on TA only)",
    stage1={"tasks": ("ta",)},
)
register_method(
    "delrec-no-distill",
    DelrecConfig,
    DelrecMethod,
    description="DELRec with a random frozen soft prompt (no stage 1): isolates the pattern",
    stage1={"tasks": ()},
)
register_method(
    "delrec-no-soft",
    DelrecConfig,
    DelrecMethod,
    description="DELRec without soft tokens: LoRA on the plain prompt (no stage 1)",
    soft_prompt={"n_tokens": 0},
)
register_method(
    "delrec-zero-shot",
    DelrecConfig,
    DelrecMethod,
    description="DELRec's distilled soft prompt in the frozen LLM, no stage 2",
    stage2=_NO_TUNE,
)

__all__ = ["DelrecConfig", "DelrecMethod", "DelrecModel"]
