"""One interface for every LLM that answers chat prompts: remote endpoints and local models.

A backend takes a batch of chat requests and yields each completion *as it arrives*,
tagged with the request's index, so the caller can store it at once (see
:mod:`slimrec.llm.cache`): a run that fails half-way keeps every answer it received. A
request that still fails after the backend's retries raises :class:`LLMError` naming the
request's ``key`` (e.g. the user id) and the cause.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import ConfigDict, Field, field_validator

from slimrec.config import LaterSettingsOmitted
from slimrec.errors import SlimrecError

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}
# Query parameters that carry credentials (Azure's api-key, signed URLs, tokens).
SECRET_PARAMS = re.compile(r"(key|token|secret|password|passwd|sig|signature|auth)", re.I)


def redact_url(url: str | None) -> str | None:
    """``url`` safe to print and store: a password in ``user:pass@`` and the values of
    credential-like query parameters become ``***``. Credentials never reach a log line,
    a config file or a stage manifest; the requests themselves use the real URL."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = urlencode(
        [(k, "***" if SECRET_PARAMS.search(k) else v) for k, v in parse_qsl(parts.query, True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class SamplingConfig(LaterSettingsOmitted):
    """Decoding settings; part of every cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    LATER_OFF: ClassVar[dict[str, Any]] = {
        "no_repeat_ngram": 0,
        "response_schema": None,
        "response_pattern": None,
    }

    max_new_tokens: int = Field(256, ge=1, description="Cap on generated tokens per answer.")
    temperature: float = Field(0.0, ge=0, description="0 = greedy (deterministic).")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    seed: int | None = Field(0, description="Sampling seed where the backend supports one.")
    no_repeat_ngram: int = Field(
        0,
        ge=0,
        description="Forbid repeating any n-gram of this many tokens within an answer "
        "(breaks the loops of small greedy models; 0 = off, else >= 2; local hf backend only).",
    )

    response_schema: dict[str, Any] | None = Field(
        None,
        description="A JSON schema the answer must follow (llama.cpp grammars, OpenAI-style "
        "response_format on endpoints such as vLLM's); None = free text.",
    )

    response_pattern: str | None = Field(
        None,
        description="A regular expression (Python `regex`: backreferences and lookaheads "
        "allowed) the whole answer must match, checked token by token; local hf backend "
        "only. None = free text.",
    )

    @field_validator("response_pattern")
    @classmethod
    def _pattern_compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            import regex

            try:
                regex.compile(pattern)
            except regex.error as e:
                raise ValueError(f"not a valid regular expression ({e})") from e
        return pattern

    @field_validator("no_repeat_ngram")
    @classmethod
    def _ngram_of_two_or_more(cls, n: int) -> int:
        if n == 1:
            raise ValueError("no_repeat_ngram 1 would forbid every token twice: use 0 or >= 2")
        return n


def only_local_decoding(sampling: SamplingConfig, backend: str) -> None:
    """Refuse the settings that only slimrec's own decoder (backend hf) offers."""
    for name in ("no_repeat_ngram", "response_pattern"):
        if getattr(sampling, name):
            raise LLMError(
                f"{name} is not offered by the {backend} backend",
                where=f"sampling.{name}",
                fix=f"unset sampling.{name}, or use the local hf backend (slimrec's decoder)",
            )


def response_format(schema: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's ``response_format`` asking for JSON that follows ``schema`` (not strict: the
    strict mode rejects the length and count limits the schemas here use)."""
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


@dataclass(frozen=True)
class ChatRequest:
    """One prompt. ``key`` names it in errors and logs (e.g. ``user 42``)."""

    key: str
    messages: list[Message]


@dataclass
class Completion:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    extra: dict = field(default_factory=dict)


class LLMError(SlimrecError):
    """An LLM request failed for good (after retries), or the endpoint is unusable."""


class Backend(Protocol):
    """What the teacher, the student and ``serve-llm`` need from a model."""

    @property
    def model_id(self) -> str:
        """Identifies the model (and adapter) in cache keys and artifacts."""
        ...

    def check(self) -> None:
        """Fail fast with one clear :class:`LLMError` if the model cannot be used at all."""
        ...

    def generate(
        self, requests: Sequence[ChatRequest], sampling: SamplingConfig
    ) -> Iterator[tuple[int, Completion]]:
        """Yield ``(index into requests, completion)`` as each answer arrives."""
        ...
