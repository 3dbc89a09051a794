"""LLM side of SLIM: the step-by-step prompt, its parser, teacher backends and answer cache."""

from slimrec.llm.backends import BACKENDS, TeacherConfig, build_backend
from slimrec.llm.cache import AnswerCache, cache_key
from slimrec.llm.parse import Rationale, parse_rationale
from slimrec.llm.prompts import TEMPLATE_VERSION, Prompt, PromptConfig, build_prompt, sanitize
from slimrec.llm.usage import Usage

__all__ = [
    "BACKENDS",
    "TEMPLATE_VERSION",
    "AnswerCache",
    "Prompt",
    "PromptConfig",
    "Rationale",
    "TeacherConfig",
    "Usage",
    "build_backend",
    "build_prompt",
    "cache_key",
    "parse_rationale",
    "sanitize",
]
