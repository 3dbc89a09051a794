"""Answers that pick offered candidates by label, read back as titles and written as labels.

A prompt that offers catalog candidates (templates ``slim-cot-v3`` and ``slim-cot-v4``,
the latter in a second turn after steps 1 and 2;
:mod:`~slimrec.methods.slim.candidate_pool`) lists them as ``C1. "title"`` lines and asks
step 3 for labels. A label is short (two or three tokens where a title is ten to thirty),
so a student cannot loop inside one or run into its token cap there, and it names exactly
one catalog item. What a person, the grounding check and the text encoder read is the
title: :func:`titled` replaces each step-3 line that is a label with its title, and
:func:`labelled` turns those lines back into labels for the student to learn. The prompt
is the one record of which label is which (:func:`offered` reads its block), so nothing
else has to travel with an answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import pairwise

_BLOCK = re.compile(r"<candidates>\n(.*?)\n</candidates>", re.DOTALL)
_OFFER = re.compile(r"^(C\d+)\. (\".*\")$")
# a list line whose first word is a label: "- C7", "2. C7", "C7: ...", "- **C7**"
_LABEL_LINE = re.compile(r"^(\s*(?:(?:[-*•]|\d+[.)])\s*)?)\**(C\d+)\b\**[^\n]*$")
_LIST_LINE = re.compile(r"^(\s*(?:[-*•]|\d+[.)])\s*)(.+?)\s*$")
_PICK = re.compile(r"^\s*[-*•]\s*C(\d+)$")
MIN_ORDERED_PICKS = 3  # two picks are ascending by chance half the time
_STEP3 = re.compile(r"^\W*step\s*3\b", re.IGNORECASE | re.MULTILINE)


def offered(user_message: str) -> dict[str, str]:
    """Label -> title of the candidates block in a prompt's user message ({} if none)."""
    block = _BLOCK.search(user_message)
    if block is None:
        return {}
    labels = {}
    for line in block.group(1).splitlines():
        match = _OFFER.match(line)
        if match:
            labels[match.group(1)] = json.loads(match.group(2))
    return labels


def titled(answer: str, labels: dict[str, str]) -> str:
    """``answer`` with every step-3 line that picks a known label by its title instead (its
    list mark kept); other lines as written."""
    if not labels:
        return answer

    by_number = {int(label[1:]): name for label, name in labels.items()}  # "C7" is "C07"

    def title(match: re.Match[str]) -> str:
        name = by_number.get(int(match.group(2)[1:]))
        return match.group(0) if name is None else f"{match.group(1)}{name}"

    return _in_step3(answer, lambda line: _LABEL_LINE.sub(title, line))


def labelled(answer: str, labels: dict[str, str]) -> str:
    """:func:`titled` undone: every step-3 list line that is exactly an offered title
    becomes its label (the first one, where two candidates share a title)."""
    if not labels:
        return answer
    by_title: dict[str, str] = {}
    for label, name in labels.items():
        by_title.setdefault(name, label)

    def label(match: re.Match[str]) -> str:
        found = by_title.get(match.group(2))
        return match.group(0) if found is None else f"{match.group(1)}{found}"

    return _in_step3(answer, lambda line: _LIST_LINE.sub(label, line))


def _in_step3(answer: str, change: Callable[[str], str]) -> str:
    """``answer`` with ``change`` applied to each line of step 3 (from its heading on;
    step 2's categories are never labels)."""
    start = _STEP3.search(answer)
    if start is None:
        return answer
    head, rest = answer[: start.start()], answer[start.start() :]
    return head + "\n".join(change(line) for line in rest.split("\n"))


def in_listed_order(answer: str, labels: dict[str, str]) -> bool:
    """Whether ``answer``'s step 3 picks candidates in the order listed (labels ascending,
    gaps allowed: C01, C02, C04, ...): a model that reads the list top down, not one that
    chooses. The list is shuffled (:func:`~slimrec.methods.slim.candidate_pool.shown_order`),
    so such picks are close to a random draw from the pool. A choice lands in ascending
    order by chance with probability 1/n! for n picks; under three picks that is too likely
    to tell the two apart, so such answers do not count as read in order."""
    lines = labelled(answer, labels).splitlines()
    picked = [int(match.group(1)) for match in map(_PICK.match, lines) if match]
    ascending = all(a < b for a, b in pairwise(picked))
    return len(picked) >= MIN_ORDERED_PICKS and ascending
