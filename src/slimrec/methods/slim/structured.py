"""Structured teacher answers: SLIM's three steps as JSON that the engine must follow.

SLIM (Wang et al., WWW 2024, Sec. 3.1) asks the teacher for three steps: preferences,
five categories, items under each. Small teachers drift from that shape (the 0.5B's
answers parsed into three steps for 41-59% of users, docs/benchmarks.md). Where the
engine compiles a JSON schema into a grammar (llama.cpp) or honours OpenAI's
``response_format`` (vLLM, llama.cpp's server, OpenAI), the answer is constrained to

    {"preferences": "...", "recommendations": [{"category": "...", "items": ["...", ...]}, x5]}

with every count and length capped by the schema. The JSON is then rendered back into the
canonical "Step 1 / Step 2 / Step 3" text, so the parser, the student's training targets
and the page all read one format, and the student is never asked for JSON. The parser
stays the fallback: an answer that is not valid JSON (cut by the token cap) is kept as
it came and parsed like free text.
"""

from __future__ import annotations

import json
from typing import Any

from slimrec.llm.backends.base import Message
from slimrec.methods.slim.prompts import Prompt, PromptConfig

# Part of every structured request (in its messages) and of the teach stage's key: bump it
# when the schema, the instruction or the rendering changes.
SCHEMA_VERSION = "slim-json-v1"
N_CATEGORIES = 5
MAX_PREFERENCES_CHARS = 300
MAX_CATEGORY_CHARS = 60

INSTRUCTION = (
    f"[{SCHEMA_VERSION}] Answer with one JSON object, no indentation: "
    '"preferences" (step 1, one or two sentences), "recommendations" (steps 2 and 3: five '
    'objects, each with a "category" and the "items" you suggest under it, by title).'
)


def answer_schema(config: PromptConfig) -> dict[str, Any]:
    """The JSON schema of one answer: five categories of ``per_category`` items each."""
    title = {"type": "string", "minLength": 1, "maxLength": config.max_title_chars}
    category = {
        "type": "object",
        "properties": {
            "category": {"type": "string", "minLength": 1, "maxLength": MAX_CATEGORY_CHARS},
            "items": {
                "type": "array",
                "items": title,
                "minItems": config.per_category,
                "maxItems": config.per_category,
            },
        },
        "required": ["category", "items"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "preferences": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_PREFERENCES_CHARS,
            },
            "recommendations": {
                "type": "array",
                "items": category,
                "minItems": N_CATEGORIES,
                "maxItems": N_CATEGORIES,
            },
        },
        "required": ["preferences", "recommendations"],
        "additionalProperties": False,
    }


def structured_messages(prompt: Prompt) -> list[Message]:
    """The teacher's messages: the SLIM prompt, its system message told the JSON shape."""
    messages = prompt.messages()
    messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n{INSTRUCTION}"}
    return messages


def render(answer: str) -> str | None:
    """The canonical three-step text of a JSON answer; None if it is not one."""
    try:
        data = json.loads(answer)
        preferences = _line(data["preferences"])
        groups = [
            (_line(group["category"]), [_line(title) for title in _list(group["items"])])
            for group in _list(data["recommendations"])
        ]
    except (ValueError, TypeError, KeyError):
        return None
    if not preferences or not groups:
        return None
    categories = "\n".join(f"{n}. {name}" for n, (name, _) in enumerate(groups, start=1))
    items = "\n".join(
        f"Under {name}:\n" + "\n".join(f"- {title}" for title in titles) for name, titles in groups
    )
    return f"Step 1: {preferences}\nStep 2:\n{categories}\nStep 3:\n{items}"


def _list(value: object) -> list:
    if not isinstance(value, list):  # a string would iterate as characters
        raise TypeError("not a list")
    return value


def _line(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return " ".join(value.split())  # one line: no value can open a step of its own
