"""Turn scraped catalog text (HTML, CSS blocks, entities, runs of spaces) into plain text.

Amazon descriptions often carry HTML and whole ``<style>`` blocks hidden in comments;
left in, they waste the text encoder's and the LLM's context on markup.
"""

from __future__ import annotations

import html
import re

_COMMENT = re.compile(r"<!--.*?(-->|$)", re.DOTALL)
_BLOCK = re.compile(r"<(script|style)\b.*?(</\1\s*>|$)", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]{0,2000}>")
_SPACE = re.compile(r"\s+")


def clean_text(value: object) -> str:
    """Plain text from a scraped field; lists are joined with ", "; None becomes ""."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        parts = [clean_text(v) for v in value]
        return ", ".join(p for p in parts if p)
    if isinstance(value, float) and value != value:  # NaN
        return ""
    # Entities first: an escaped "&lt;script&gt;" is markup too, and must not survive as
    # a live tag once unescaped.
    text = html.unescape(str(value))
    if "<" in text:
        text = _COMMENT.sub(" ", text)
        text = _BLOCK.sub(" ", text)
        text = _TAG.sub(" ", text)
    return _SPACE.sub(" ", text).strip()
