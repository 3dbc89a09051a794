"""Split an LLM's answer into SLIM's three steps, robustly, and say what was missing.

Models number their steps every way: "Step 1:", "**Step 1 -**", "### 1.", "1)", "(1)".
Explicit "Step N" headings win; only when there are none do bare numbers at the start of
a line count, and then only the first 1, 2, 3 in order -- the products listed under
step 3 are numbered too and must stay inside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

STEP_NAMES = ("summary", "categories", "items")

_DECOR = r"[\s#>*_]*"  # markdown heading, quote, bold and italic marks
_STEP_HEADING = re.compile(rf"^{_DECOR}step\s*([123])\b[\s*_]*[:.)\-–—]?[\s*_]*", re.I | re.M)
_BARE_HEADING = re.compile(rf"^{_DECOR}\(?([123])[.):][\s*_]*", re.M)


@dataclass
class Rationale:
    """The three steps of a rationale; ``missing`` names the steps not found."""

    summary: str = ""
    categories: str = ""
    items: str = ""
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing

    def steps(self) -> list[str]:
        return [self.summary, self.categories, self.items]


def parse_rationale(text: str) -> Rationale:
    """Parse ``text`` into its steps; a step that cannot be found is empty and listed."""
    text = text.replace("\r\n", "\n")
    marks = [(m.start(), m.end(), int(m.group(1))) for m in _STEP_HEADING.finditer(text)]
    if not marks:
        marks = _first_in_order(_BARE_HEADING.finditer(text))
    bodies: dict[int, str] = {}
    for i, (_, end, step) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else len(text)
        if step not in bodies:  # a repeated heading does not overwrite the first
            bodies[step] = _clean(text[end:stop])
    result = Rationale(
        summary=bodies.get(1, ""), categories=bodies.get(2, ""), items=bodies.get(3, "")
    )
    result.missing = [
        name for name, body in zip(STEP_NAMES, result.steps(), strict=True) if not body
    ]
    return result


def _first_in_order(matches) -> list[tuple[int, int, int]]:
    marks, want = [], 1
    for m in matches:
        if int(m.group(1)) == want:
            marks.append((m.start(), m.end(), want))
            want += 1
            if want > 3:
                break
    return marks


def _clean(body: str) -> str:
    lines = [line.rstrip() for line in body.strip().splitlines()]
    return "\n".join(lines).strip(" *_\n")


def split_at_step3(text: str) -> tuple[str, str]:
    """``text`` before its "Step 3" heading and from it on (the two turns of a prompt
    asked in two: steps 1 and 2, then step 3); ("text", "") where it has none."""
    for mark in _STEP_HEADING.finditer(text):
        if mark.group(1) == "3":
            return text[: mark.start()].rstrip(), text[mark.start() :].strip()
    return text.rstrip(), ""
