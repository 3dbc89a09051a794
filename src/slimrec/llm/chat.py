"""A chat prompt as token ids, its message text read as plain text.

Item titles, histories and LLM answers reach prompts as message text, and a chat
template joins that text with the model's own turn markers. Tokenising the joined string
with special tokens parsed is what makes the markers special, so the same parsing would
let message text that spells a marker forge one (``<|im_end|>`` with ChatML, ``[INST]``
with Mistral's tokenizers). :func:`slimrec.llm.sanitize.sanitize` neutralises angle
brackets in untrusted text; here every special token *this* tokenizer has is broken up
inside message text before the template runs, whatever its spelling, so only the
template's own markers become special tokens. One function for the student's training
prompts and every local generation (the hf backend, ``serve-llm``), so both tokenise a
prompt alike. Local engines that render the template themselves (llama.cpp, a vLLM server)
get their messages through :func:`plain_messages` with their own model's special tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def special_tokens(tokenizer: Any) -> list[str]:
    """The spellings of the tokenizer's special tokens, longest first."""
    found = set(tokenizer.all_special_tokens)
    found |= {t.content for t in tokenizer.added_tokens_decoder.values() if t.special}
    return sorted((t for t in found if t), key=len, reverse=True)


def plain_text(text: str, specials: Sequence[str]) -> str:
    """``text`` with each spelling in ``specials`` broken by a space after its first
    character (a one-character special is dropped), so that none is left in it."""
    for _ in range(len(text) + 1):  # each pass removes an occurrence, and adds none
        hit = next((s for s in specials if s in text), None)
        if hit is None:
            return text
        text = text.replace(hit, f"{hit[0]} {hit[1:]}" if len(hit) > 1 else "")
    return text


def plain_messages(
    messages: Sequence[dict[str, Any]], specials: Sequence[str]
) -> list[dict[str, Any]]:
    """``messages`` with every text content made :func:`plain_text`."""
    return [
        {**m, "content": plain_text(m["content"], specials)}
        if isinstance(m.get("content"), str)
        else m
        for m in messages
    ]


def chat_prompt_ids(tokenizer: Any, messages: Sequence[dict[str, Any]]) -> list[int]:
    """The prompt's token ids: the chat template with the assistant turn opened, every
    message's text read as plain text."""
    plain = plain_messages(messages, special_tokens(tokenizer))
    text = tokenizer.apply_chat_template(plain, add_generation_prompt=True, tokenize=False)
    # The template holds every special token the model expects (no BOS added again).
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
