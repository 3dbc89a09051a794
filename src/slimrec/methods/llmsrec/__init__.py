"""LLM-SRec (Kim et al., "Lost in Sequence: Do Large Language Models Understand Sequential
Recommendation?", KDD 2025): a frozen LLM reads the user's items with their CF
embeddings as soft tokens and is distilled towards a trained SASRec -- registered here.
"""

from slimrec.methods.base import register_method
from slimrec.methods.llmsrec.config import LLMSRecConfig
from slimrec.methods.llmsrec.method import LLMSRecMethod
from slimrec.methods.llmsrec.model import LLMSRec

register_method(
    "llm-srec",
    LLMSRecConfig,
    LLMSRecMethod,
    description="LLM-SRec: a frozen LLM reads titles + projected SASRec item embeddings, its "
    "[UserOut] state (MLP) distilled towards the trained SASRec user vector",
)
register_method(
    "llm-srec-nodistill",
    LLMSRecConfig,
    LLMSRecMethod,
    description="LLM-SRec without distillation (retrieval loss only): the ablation",
    distill_weight=0.0,
    uniform_weight=0.0,
)

register_method(
    "llm-srec-frozen",
    LLMSRecConfig,
    LLMSRecMethod,
    description="DEVIATION from LLM-SRec (fast, for CPUs): text-only prompts, the frozen "
    "LLM's states computed once, only the MLPs trained (distillation kept)",
    frozen=True,
)

__all__ = ["LLMSRec", "LLMSRecConfig", "LLMSRecMethod"]
