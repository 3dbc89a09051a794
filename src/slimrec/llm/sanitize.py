"""Untrusted text (item titles, histories, LLM outputs) made safe to put in a prompt.

Titles come from catalogs and users: they are data, never instructions. :func:`sanitize`
turns one into a single safe line: control and format characters (zero-width, bidi
overrides) become spaces, angle brackets become look-alikes (so no title can open or
close a delimited block such as ``<history>``), whitespace collapses, and the length is
capped. Special tokens spelled without angle brackets (Mistral's ``[INST]``) are left to
the tokenizer that knows them: every local engine (hf, llama.cpp, vLLM) and the student's
training prompts read message text as plain text (:mod:`slimrec.llm.chat`). A remote
endpoint renders the chat template itself with a tokenizer slimrec cannot see: with a
model whose special tokens have no angle brackets, a title that spells one reaches that
endpoint as the token.
"""

from __future__ import annotations

import re
import unicodedata

# Control (Cc), format (Cf: zero-width, bidi overrides), separators other than space.
_STRIP_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Zl", "Zp"}
_SPACES = re.compile(r"\s+")


def sanitize(text: str, max_chars: int) -> str:
    """One safe line: no control/format characters, no angle brackets, length-capped."""
    text = printable(unicodedata.normalize("NFKC", str(text)))
    # Brackets could forge or close the <history> block; the look-alikes keep titles readable.
    text = text.replace("<", "‹").replace(">", "›")
    text = _SPACES.sub(" ", text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 1].rstrip() + "…"
    return text


def quoted(text: str, max_chars: int) -> str:
    """``text`` made safe (:func:`sanitize`) inside double quotes, its own double quotes
    turned single, so no title can close its quotes and add an item of its own."""
    return '"' + sanitize(text, max_chars).replace('"', "'") + '"'


def printable(text: str) -> str:
    """``text`` with its control and format characters as spaces and nothing else changed:
    what a terminal may be shown (an escape sequence in a title could recolour, move the
    cursor or retitle the window; a bidi override could reorder what is read)."""
    return "".join(" " if unicodedata.category(ch) in _STRIP_CATEGORIES else ch for ch in text)
