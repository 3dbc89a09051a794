"""What a rationale is worth before anyone reads it: loops, echoes, distinct categories.

SLIM's rationales (Wang et al., WWW 2024, Sec. 3.1) are read by a person on the page and
learned by the student, so a defect in them is copied. Checks that need no model:

- *repeated lines*: a weak teacher loops -- the same list line again and again, step 2
  restating step 1; a student trained on such answers learns to loop;
- *loops within a line*: a student held to "no line twice" can still loop inside one
  ("The Dark Knight, The Dark Knight, The Dark Knight, ...");
- *echo*: the answer repeats the instructions' own words ("Step 3: Under each of those
  five, suggest ...", "oldest first") instead of reasoning about the user;
- *five distinct categories*: step 2 names five different categories, as asked.
"""

from __future__ import annotations

import json
import re
from typing import Any

ECHO_WORDS = 5  # this many consecutive words of the instructions in an answer is an echo
LIST_MARK = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")  # "1." "2)" "-" "*" "•"


def repeated_lines(text: str, min_chars: int = 12) -> int:
    """How many lines of ``text`` repeat an earlier one (list numbers and bullets ignored).

    Lines shorter than ``min_chars`` (headers like "Step 2:") are not counted.
    """
    seen: set[str] = set()
    repeats = 0
    for line in text.splitlines():
        core = line_core(line)
        if len(core) < min_chars:
            continue
        repeats += core in seen
        seen.add(core)
    return repeats


def looping_lines(text: str) -> int:
    """How many lines of ``text`` say a part again right after itself: parts are what
    commas, colons and semicolons separate (case and punctuation aside), and a run of one
    to three parts counts when it has three words or more, or comes three times ("The
    Dark Knight, The Dark Knight Rises" and "New York, New York" are not loops; "The Sims
    4: The Sims 4" and "The, The, The" are)."""
    return sum(_loops(line) for line in text.splitlines())


def _loops(line: str) -> bool:
    parts = [" ".join(re.findall(r"\w+", part.lower())) for part in re.split(r"[,:;]", line)]
    parts = [part for part in parts if part]
    for size in (1, 2, 3):
        for i in range(len(parts) - 2 * size + 1):
            run = parts[i : i + size]
            if run == parts[i + size : i + 2 * size]:
                thrice = run == parts[i + 2 * size : i + 3 * size]
                if thrice or sum(len(part.split()) for part in run) >= 3:
                    return True
    return False


def line_core(line: str) -> str:
    """What a reader compares in a line: no list number, bullet, emphasis, trailing colon or
    case ("2. **Racing:**" and "- racing" are one line)."""
    return line.replace("*", "").strip().lstrip("0123456789.)-# ").strip(" :").lower()


def instructions_of(user_message: str) -> str:
    """The instructions of a SLIM prompt: everything after its history block and, where
    candidates are offered, their block (an answer naming a candidate does not echo)."""
    return re.split(r"</(?:history|candidates)>", user_message)[-1]


def echoes(answer: str, instructions: str, n: int = ECHO_WORDS) -> bool:
    """Whether ``answer`` repeats ``n`` consecutive words of ``instructions``."""
    words = instructions.lower().split()
    grams = {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
    flat = " ".join(answer.lower().split())
    return any(gram in flat for gram in grams)


def echoes_prompt(answer: str, messages: list[dict[str, str]]) -> bool:
    """:func:`echoes` against the instructions of each user message of the prompt
    ``messages`` (two where it was asked in two turns)."""
    asked = [m["content"] for m in messages if m["role"] == "user"]
    return any(echoes(answer, instructions_of(text)) for text in asked)


def five_distinct(step2: str) -> bool:
    """Whether step 2 lists five different names (its list lines, when it has any)."""
    lines = [line.strip() for line in step2.splitlines() if line.strip()]
    listed = [line for line in lines if LIST_MARK.match(line)] or lines
    names = {LIST_MARK.sub("", line).strip(" *_").lower() for line in listed}
    return len(listed) == 5 and len(names) == 5


def table_rates(frame: Any, cap: int | None) -> dict[str, float]:
    """The checks over a rationales table (teach's and reason's columns), as shares of its
    answers: parsed into three steps, at the token ``cap``, repeating a line, echoing the
    prompt's instructions, naming five distinct categories, looping within a line; and the
    mean answer length."""
    tokens = frame["completion_tokens"].fillna(0).astype(int)
    at_cap = tokens >= cap if cap else tokens < 0
    if "at_cap" in frame.columns and frame["at_cap"].notna().all():  # per turn, where two
        at_cap = frame["at_cap"].astype(bool)
    answered = zip(frame["response"], frame["prompt"], strict=True)
    echoed = [echoes_prompt(str(answer), json.loads(prompt)) for answer, prompt in answered]
    return {
        "parse_rate": float(frame["parsed"].mean()),
        "cap_rate": float(at_cap.mean()),
        "repeat_rate": float(frame["response"].map(repeated_lines).gt(0).mean()),
        "echo_rate": sum(echoed) / len(echoed),
        "distinct_rate": float(frame["step2"].fillna("").map(five_distinct).mean()),
        "loop_rate": float(frame["response"].map(looping_lines).gt(0).mean()),
        "mean_tokens": float(tokens.mean()),
    }
