"""Token accounting of a teacher run: what was asked, what came from the cache, what it cost.

Remote teachers bill per token, so a run ends with one line saying how many prompt and
completion tokens the *new* answers used and, when prices per million tokens are
configured, an estimated cost. Cached answers cost nothing again and are counted apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from slimrec.llm.backends.base import Completion


@dataclass
class Usage:
    """Running totals; ``add`` each new completion, ``add_cached`` each cache hit."""

    price_prompt_per_mtok: float | None = None
    price_completion_per_mtok: float | None = None
    answers: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_answers: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    retries: int = 0

    def add(self, completion: Completion) -> None:
        self.answers += 1
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens

    def add_cached(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.cached_answers += 1
        self.cached_prompt_tokens += prompt_tokens
        self.cached_completion_tokens += completion_tokens

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.price_prompt_per_mtok is None and self.price_completion_per_mtok is None:
            return None
        return (
            prompt_tokens * (self.price_prompt_per_mtok or 0.0)
            + completion_tokens * (self.price_completion_per_mtok or 0.0)
        ) / 1e6

    @property
    def cost(self) -> float | None:
        """Estimated cost of the new answers (``None`` without prices)."""
        return self._cost(self.prompt_tokens, self.completion_tokens)

    @property
    def cost_saved(self) -> float | None:
        """What the cached answers would have cost again."""
        return self._cost(self.cached_prompt_tokens, self.cached_completion_tokens)

    def summary(self) -> str:
        line = (
            f"{self.answers:,} new answers: {self.prompt_tokens:,} prompt + "
            f"{self.completion_tokens:,} completion tokens"
        )
        if self.cost is not None:
            line += f", estimated cost ${self.cost:.4f}"
        if self.retries:
            line += f", {self.retries:,} retries"
        line += f"; {self.cached_answers:,} from the cache"
        if self.cached_answers and self.cost_saved is not None:
            line += f" (saved ${self.cost_saved:.4f})"
        return line

    def __str__(self) -> str:
        return self.summary()
