"""Structured teacher answers: SLIM's three steps as JSON that the engine must follow.

SLIM (Wang et al., WWW 2024, Sec. 3.1) asks the teacher for three steps: preferences,
five categories, items under each. Small teachers drift from that shape (the 0.5B's
answers parsed into three steps for 41-59% of users, docs/benchmarks.md). Where the
engine compiles a JSON schema into a grammar (llama.cpp) or honours OpenAI's
``response_format`` (vLLM, llama.cpp's server, OpenAI), the answer is constrained to

    {"preferences": "...", "recommendations": [{"category": "...", "items": ["...", ...]}, x5]}

with every count and length capped by the schema. The JSON is then rendered back into the
canonical "Step 1 / Step 2 / Step 3" text, so the parser, the student's training targets
and the page all read one format, and the student is never asked for JSON. A JSON
grammar allows any whitespace between values, and a teacher can loop there: 48 of the
1.5B's 1,000 bf16 answers on vLLM wrote four categories (33 of them), where the schema
forbids closing the list, and then blank lines until the token cap. Such an answer is
closed again when it was cut between values (:func:`closed`): what it wrote is rendered,
with fewer categories than five where it stopped short (the rationale checks count
those). The parser stays the fallback: an answer cut inside a value is kept as it came
and parsed like free text.

No grammar can say "no title twice", and teachers repeat themselves: half of the 0.5B's
and the 1.5B's answers listed a title under two categories or one category twice
(docs/benchmarks.md). A reader gains nothing from the second copy and a student learns
to loop from it, so rendering drops it (:func:`distinct`); the answer as the teacher
wrote it stays in the answer cache (``drop_repeats: false`` renders every line).

The student learns that rendered text, and can be held to it the same way
(:func:`student_pattern`, a regular expression its decoder follows token by token): the
same steps, counts and lengths, step 3's headings naming step 2's categories again, and,
what no JSON schema can say, no category or title twice.

Where the prompt offers catalog candidates (``prompt.candidates``), step 3's items are
their labels ("C07") in the schema and in the student's pattern, each picked once; what
people and encoders read is the titles (:mod:`~slimrec.methods.slim.candidate_labels`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slimrec.llm.backends.base import Message
from slimrec.methods.slim.parse import parse_rationale, split_at_step3
from slimrec.methods.slim.prompts import (
    CANDIDATES_TEMPLATES,
    Prompt,
    PromptConfig,
    candidate_label,
)
from slimrec.methods.slim.rationale_checks import LIST_MARK, line_core

# Part of every structured request (in its messages) and of the teach stage's key: bump it
# when the schema or the instruction changes (the teacher is then asked again).
SCHEMA_VERSION = "slim-json-v1"
# Part of the teach stage's key only: bump it when rendering changes (cached answers are
# rendered again, not asked again).
RENDER_VERSION = "closed-v1"
# Added to RENDER_VERSION in the key where repeats are dropped (:func:`distinct`).
DROP_REPEATS_VERSION = "distinct-v1"
N_CATEGORIES = 5
MAX_PREFERENCES_CHARS = 300
MAX_CATEGORY_CHARS = 60
EDGE = r"[^\s\p{Cc}\p{Zl}\p{Zp}]"  # a value's first and last character: visible

INSTRUCTION = (
    f"[{SCHEMA_VERSION}] Answer with one JSON object, no indentation: "
    '"preferences" (step 1, one or two sentences), "recommendations" (steps 2 and 3: five '
    'objects, each with a "category" and the "items" you suggest under it, by title).'
)
# Where candidates are offered, items are their labels (the schema lists the labels).
INSTRUCTION_LABELS = INSTRUCTION.replace("you suggest under it, by title", "you pick, by label")
# A template asked in two turns (prompts.FOLLOW_UPS) has a JSON object per turn.
# The second turn names each category again before its picks: with bare lists of labels
# ("picks": [["C01", "C02"], ...], slim-json-turns-v1) the 1.5B picked C01..C10 in order
# for each of the first 12 users on amazon-office, as if no category stood above them.
TWO_TURN_SCHEMA_VERSION = "slim-json-turns-v2"
INSTRUCTION_TURNS = (
    f"[{TWO_TURN_SCHEMA_VERSION}] Answer each message with one JSON object, no indentation. "
    'To the history: "preferences" (step 1, one or two sentences) and "categories" (step 2, '
    'five different names). To the candidates: "recommendations" (step 3: five objects, '
    'in the order of your categories, each with its "category" and the "items" you pick '
    "for it, by label)."
)
# Step 1 of the first turn may run longer than the one-turn schema's: the 1.5B's summaries
# ran into that 300-character cap and were cut mid-sentence.
MAX_TURN_PREFERENCES_CHARS = 500


def answer_schema(config: PromptConfig, turn: int = 0) -> dict[str, Any]:
    """The JSON schema of one answer: five categories of ``per_category`` items each
    (``turn`` 1 or 2 of a template asked in two turns: preferences and categories, then
    the picks under each)."""
    if turn:
        return _turn_schema(config, turn)
    title: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": config.max_title_chars}
    if config.candidates:  # labels, the same for every prompt (their titles differ)
        title = {"type": "string", "enum": candidate_labels(config)}
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


def _turn_schema(config: PromptConfig, turn: int) -> dict[str, Any]:
    name = {"type": "string", "minLength": 1, "maxLength": MAX_CATEGORY_CHARS}
    if turn == 1:
        summary = {"type": "string", "minLength": 1, "maxLength": MAX_TURN_PREFERENCES_CHARS}
        return _object(preferences=summary, categories=_exactly(N_CATEGORIES, name))
    label = {"type": "string", "enum": candidate_labels(config)}
    group = _object(category=name, items=_exactly(config.per_category, label))
    return _object(recommendations=_exactly(N_CATEGORIES, group))


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _exactly(n: int, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items, "minItems": n, "maxItems": n}


def student_pattern(config: PromptConfig, turn: int = 0) -> str:
    """The rendered three steps (:func:`render`) as a pattern for the student's decoder.

    Every value is one line without outer spaces and within the schema's length; step 2's
    categories differ from each other, and every title from the categories and the other
    titles (case ignored); each line ends with a newline, so "the answer is complete" is
    a full match and nothing is cut. Each value may run longer than every value it must
    differ from (the k-th by k characters): a copy of an earlier value can then always
    grow into a new one, so no row is left without an allowed next token (a copy at the
    length limit would be a dead end). Where candidates are offered, each item is a label
    not picked before, refused from its first character on that no free label shares ("C0"
    after C01..C09 were picked: the stem had left such a student with no next token).

    A template asked in two turns has a pattern per turn: ``turn`` 1 (steps 1 and 2) and
    2 (step 3, its headings distinct but not tied to step 2's categories, which the
    pattern of that turn cannot see: the answer is put together under step 2's names,
    :func:`joined_turns`); 0 is the whole answer of a one-turn template.
    """
    if turn == 1:
        return _steps_1_2(MAX_TURN_PREFERENCES_CHARS)
    if turn == 2:
        return _step_3(config, [f"h{n}" for n in range(1, N_CATEGORIES + 1)], tied=False)
    categories = [f"c{n}" for n in range(1, N_CATEGORIES + 1)]
    return _steps_1_2(MAX_PREFERENCES_CHARS) + _step_3(config, categories, tied=True)


def _steps_1_2(max_preferences: int) -> str:
    categories = [f"c{n}" for n in range(1, N_CATEGORIES + 1)]
    parts = [rf"Step 1: {_value('pref', max_preferences, listed=False)}\nStep 2:\n"]
    for n, name in enumerate(categories):
        value = _value(name, MAX_CATEGORY_CHARS + n, categories[:n])
        parts.append(rf"{n + 1}\. {value}\n")
    return "".join(parts)


def _step_3(config: PromptConfig, categories: list[str], tied: bool) -> str:
    """Step 3 under the groups ``categories`` (``tied``: each heading repeats the group
    of step 2; else each is a new value, distinct from the headings before it)."""
    titles = [f"t{n}" for n in range(1, N_CATEGORIES * config.per_category + 1)]
    parts = [r"Step 3:\n"]
    longest_category = MAX_CATEGORY_CHARS + N_CATEGORIES
    # each label once: its group is set where it is picked, and a label whose group is set
    # fails before reading a character, so a stem whose labels are all taken ("C0" after
    # C01..C09) is refused at once, not left a dead end (a lookbehind would do the same, but
    # the regex module's partial matching lets a failed one through)
    fresh_labels = "|".join(
        rf"(?(pick_{label})(?!)|(?P<pick_{label}>{label}))" for label in candidate_labels(config)
    )
    for n, name in enumerate(categories):
        if tied:
            parts.append(rf"Under (?P={name}):\n")
        else:
            heading = _value(name, MAX_CATEGORY_CHARS + n, categories[:n], ending=r":\n")
            parts.append(rf"Under {heading}:\n")
        for k in range(n * config.per_category, (n + 1) * config.per_category):
            if config.candidates:  # a label not picked before (there are enough of them)
                parts.append(rf"- (?:{fresh_labels})\n")
                continue
            limit = max(config.max_title_chars, longest_category) + k
            value = _value(titles[k], limit, categories + titles[:k])
            parts.append(rf"- {value}\n")
    return "".join(parts)


def candidate_labels(config: PromptConfig) -> list[str]:
    """The labels a prompt with ``config.candidates`` offers."""
    return [candidate_label(k, config.candidates) for k in range(1, config.candidates + 1)]


def _value(
    group: str, max_chars: int, unlike: Sequence[str] = (), listed: bool = True, ending: str = r"\n"
) -> str:
    """One line of 1..``max_chars`` characters, no outer spaces, none of ``unlike`` (case
    ignored). No control characters either: str.splitlines() breaks lines at \\x0b, \\x0c,
    \\x1c-\\x1e, \\x85 and the Unicode line separators as well as at newlines. A
    ``listed`` value (a category or title) also reads as itself to a reader: no list mark
    or "Under " of its own, no trailing colon, so "- 2. Action" cannot copy "2. Action" and
    "- Under Action" cannot copy a heading (:func:`~.rationale_checks.line_core`)."""
    differs = f"(?i:(?!(?:{'|'.join(f'(?P={u})' for u in unlike)}){ending}))" if unlike else ""
    inner = rf"[^\p{{Cc}}\p{{Zl}}\p{{Zp}}]{{0,{max(0, max_chars - 2)}}}"
    first, last = EDGE, EDGE
    if listed:
        first = rf"(?!\d+[.)]\s|[-*#.):•]|(?i:under\s)){EDGE}"
        last = r"[^\s\p{Cc}\p{Zl}\p{Zp}:*]"
    return rf"{differs}(?P<{group}>{first}(?:{inner}{last})?)"


def structured_messages(prompt: Prompt, first_answer: str | None = None) -> list[Message]:
    """The teacher's messages: the SLIM prompt, its system message told the JSON shape
    (with ``first_answer``, the second turn's of a template asked in two)."""
    if first_answer is None:
        messages = prompt.messages()
    else:
        messages = prompt.follow_up_messages(first_answer)
    if prompt.follow_up:
        told = INSTRUCTION_TURNS
    else:
        told = INSTRUCTION_LABELS if prompt.version in CANDIDATES_TEMPLATES else INSTRUCTION
    messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n{told}"}
    return messages


def render(answer: str, drop_repeats: bool = True) -> str | None:
    """The canonical three-step text of a JSON answer, without what it says twice unless
    ``drop_repeats`` is off (an answer whose every title was said before keeps an empty
    step 3 and does not parse: it suggested nothing); None if it is not one."""
    try:
        data = json.loads(answer)
    except ValueError:
        data = closed(answer)
    return _rendered(data, drop_repeats)


def render_turns(first: str, second: str | None, drop_repeats: bool = True) -> str | None:
    """The canonical three-step text of the two JSON answers of a template asked in two
    turns (``second`` None or not JSON: steps 1 and 2 alone, which do not parse as three
    steps); None if ``first`` is not its turn's JSON."""
    try:
        one = json.loads(first)
        picks = []
        if second is not None:  # the picks under each category, in step 2's order
            try:
                picks = [g["items"] for g in _list(json.loads(second)["recommendations"])]
            except (ValueError, TypeError, KeyError):
                picks = []
        categories = _list(one["categories"])
        picks = [*picks, *[[] for _ in categories]][: len(categories)]
        data = {
            "preferences": one["preferences"],
            "recommendations": [
                {"category": c, "items": p} for c, p in zip(categories, picks, strict=True)
            ],
        }
    except (ValueError, TypeError, KeyError):
        return None
    return _rendered(data, drop_repeats)


def first_turn_ok(first: str) -> bool:
    """Whether the first turn's answer is its JSON (worth asking the second turn)."""
    return render_turns(first, None, drop_repeats=False) is not None


def second_turn(prompt: Prompt, first: str) -> list[Message]:
    """A student's second-turn messages after its first answer ``first`` (anything it wrote
    past step 2 cut, as :func:`joined_turns` cuts it)."""
    return prompt.follow_up_messages(split_at_step3(first)[0])


def joined_turns(first: str, second: str) -> str:
    """A student's two turns as one answer: steps 1 and 2 of the first (anything it wrote
    past them cut), step 3 of the second under step 2's category names."""
    steps_1_2, _ = split_at_step3(first)
    step_3 = second.strip()
    if not step_3.lower().startswith("step 3"):
        step_3 = f"Step 3:\n{step_3}"
    listed = parse_rationale(steps_1_2).categories.splitlines()  # step 2's lines alone
    names = [LIST_MARK.sub("", line) for line in listed if LIST_MARK.match(line)]
    lines, n = [], 0
    for line in step_3.splitlines():
        if line.startswith("Under ") and line.endswith(":") and n < len(names):
            line, n = f"Under {names[n]}:", n + 1
        lines.append(line)
    return f"{steps_1_2}\n" + "\n".join(lines)


def _rendered(data: Any, drop_repeats: bool) -> str | None:
    try:
        preferences = _line(data["preferences"])
        groups = [
            (_line(group["category"]), [_line(title) for title in _list(group["items"])])
            for group in _list(data["recommendations"])
        ]
    except (ValueError, TypeError, KeyError):
        return None
    if drop_repeats:
        groups = distinct(groups)
    if not preferences or not groups:
        return None
    return steps_text(preferences, groups)


def steps_text(preferences: str, groups: list[tuple[str, list[str]]]) -> str:
    """The three steps as text: the preferences, the categories numbered, and the titles
    under each category that has any."""
    categories = "\n".join(f"{n}. {name}" for n, (name, _) in enumerate(groups, start=1))
    items = "\n".join(
        f"Under {name}:\n" + "\n".join(f"- {title}" for title in titles)
        for name, titles in groups
        if titles
    )
    return f"Step 1: {preferences}\nStep 2:\n{categories}\nStep 3:\n{items}"


def distinct(groups: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """``groups`` of (category, titles) with nothing said twice, compared as a reader
    compares lines (:func:`~slimrec.methods.slim.rationale_checks.line_core`): a category
    named before is dropped with its titles, and a title named before or naming a category
    is dropped (a category may be left with none: step 2 still names it, step 3 skips it)."""
    named: set[str] = set()
    categories = []
    for name, titles in groups:
        if _key(name) not in named:
            named.add(_key(name))
            categories.append((name, titles))
    seen = set(named)
    kept = []
    for name, titles in categories:
        fresh = []
        for title in titles:
            if _key(title) not in seen:
                seen.add(_key(title))
                fresh.append(title)
        kept.append((name, fresh))
    return kept


def _key(value: str) -> str:
    return line_core(value) or value.lower()  # "1984" has no core once numbering is cut


def closed(answer: str) -> Any:
    """An answer cut by the token cap between two values, closed again: its open arrays
    and objects closed in order; None when it was cut inside a value (a title would end
    where the cap fell) or before its first category had an item (a step would be
    missing)."""
    open_brackets: list[str] = []
    in_string = escaped = False
    for char in answer:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            open_brackets.append("]" if char == "[" else "}")
        elif char in "]}" and (not open_brackets or open_brackets.pop() != char):
            return None  # a closer that matches nothing: not this schema's JSON
    if in_string or not open_brackets:
        return None
    body = answer.rstrip()
    if body.endswith((",", ":")):  # the cap fell after a separator: the next value is missing
        return None
    try:
        data = json.loads(body + "".join(reversed(open_brackets)))
    except ValueError:
        return None
    groups = data.get("recommendations") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups:
        return None
    if not all(isinstance(g, dict) and g.get("category") and g.get("items") for g in groups):
        return None  # cut inside a category's object: its name or items are missing
    return data


def _list(value: object) -> list:
    if not isinstance(value, list):  # a string would iterate as characters
        raise TypeError("not a list")
    return value


def _line(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return " ".join(value.split())  # one line: no value can open a step of its own
