"""LLM side of SLIM: the step-by-step prompt, its parser, and (next) teacher backends."""

from slimrec.llm.parse import Rationale, parse_rationale
from slimrec.llm.prompts import TEMPLATE_VERSION, Prompt, PromptConfig, build_prompt, sanitize

__all__ = [
    "TEMPLATE_VERSION",
    "Prompt",
    "PromptConfig",
    "Rationale",
    "build_prompt",
    "parse_rationale",
    "sanitize",
]
