"""Answers held to a regular expression, token by token, in slimrec's own decoder.

Small models drift from the shape they were taught: the distilled SLIM student loops on
a list line until its token cap and never reaches step 3 for a third to half of the
users (docs/benchmarks.md, "The distilled student's token cap"). Engines with a grammar
(llama.cpp's GBNF, vLLM's guided decoding) hold a model to a shape; this is the same
idea for :mod:`slimrec.llm.decode`, built on the ``regex`` module's *partial* matching:
a token is allowed when the answer with it is still the start of some full match, and a
stop token only when the answer is a full match. The decoder asks only about the token
it was going to pick (and, when refused, the next best ones), so the cost is a few
microsecond matches per row and step, not a pass over the vocabulary.

A pattern may use backreferences and lookaheads, which the engines' grammars cannot:
``(?!(?P=first)\\n)`` keeps a list item from repeating an earlier one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import regex

from slimrec.errors import ConfigError


class PatternFilter:
    """``allow(tokens, candidate)``: may ``candidate`` follow ``tokens`` under ``pattern``?

    Special tokens other than the stops never enter an answer, whatever the pattern: they
    would open a chat turn when the answer is later shown to a model again.
    """

    def __init__(
        self,
        pattern: str,
        decode: Callable[[list[int]], str],
        stop_ids: Iterable[int],
        special_ids: Iterable[int] = (),
    ):
        self.regex = compile_pattern(pattern)
        self.decode = decode
        self.stop_ids = set(stop_ids)
        self.banned = set(special_ids) - self.stop_ids

    def complete(self, tokens: list[int]) -> bool:
        """Whether ``tokens`` (no stop token) decode to a full match."""
        match = self.regex.fullmatch(self.decode(tokens), partial=True)
        return match is not None and not match.partial

    def __call__(self, tokens: list[int], candidate: int) -> bool:
        if candidate in self.stop_ids:
            return self.complete(tokens)
        if candidate in self.banned:
            return False
        return self.regex.fullmatch(self.decode([*tokens, candidate]), partial=True) is not None


def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled, or one line naming what is wrong with it."""
    try:
        return regex.compile(pattern)
    except regex.error as e:
        raise ConfigError(
            f"not a valid regular expression ({e})",
            where="sampling.response_pattern",
            fix="give a pattern the Python `regex` module compiles",
        ) from e


def tokenizer_filter(pattern: str, tokenizer: Any, stop_ids: Iterable[int]) -> PatternFilter:
    """A :class:`PatternFilter` for a transformers tokenizer (special tokens refused)."""
    added = getattr(tokenizer, "added_tokens_decoder", {})  # chat markers live here
    special = set(tokenizer.all_special_ids) | {i for i, t in added.items() if t.special}
    return PatternFilter(
        pattern, lambda ids: tokenizer.decode(ids, skip_special_tokens=False), stop_ids, special
    )
