"""Generic LLM parts: backends (local and OpenAI-compatible), model resolution, the
answer cache, batched decoding, soft-prompt reading and untrusted-text handling. No
method lives here; methods build on it (SLIM's prompt, parser and teacher are in
:mod:`slimrec.methods.slim`)."""

from slimrec.llm.backends import BACKENDS, BackendConfig, build_backend
from slimrec.llm.cache import AnswerCache, cache_key
from slimrec.llm.sanitize import sanitize
from slimrec.llm.usage import Usage

__all__ = [
    "BACKENDS",
    "AnswerCache",
    "BackendConfig",
    "Usage",
    "build_backend",
    "cache_key",
    "sanitize",
]
