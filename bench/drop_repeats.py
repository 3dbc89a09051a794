"""What `teacher.drop_repeats` removes from a run's structured teacher answers (issue 17).

Reads the rendered rationales of a run's teach stage (the canonical "Step 1 / Step 2 /
Step 3" text that `structured.render` writes, rendered with every line), renders each
again without what it says twice (`structured.distinct`), and prints per run: answers,
the share repeating a line before and after, titles per answer, categories in step 2,
five distinct categories, and the share looping within a line. Nothing is asked again.

Usage:
    .venv/bin/python bench/drop_repeats.py runs/quickstart \
        bench/runs/amazon-games-teacher1000
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pandas as pd

from slimrec.machine import describe
from slimrec.methods.slim.parse import parse_rationale
from slimrec.methods.slim.rationale_checks import five_distinct, looping_lines, repeated_lines
from slimrec.methods.slim.structured import distinct, steps_text


def groups_of(text: str) -> tuple[str, list[tuple[str, list[str]]]] | None:
    """The preferences and (category, titles) of a rendered answer; None if not one."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("Step 1: ") or "Step 3:" not in lines:
        return None
    step3 = lines.index("Step 3:")
    categories = [re.sub(r"^\d+\. ", "", line) for line in lines[2:step3]]
    blocks: list[tuple[str, list[str]]] = []
    for line in lines[step3 + 1 :]:
        if line.startswith("Under ") and line.endswith(":"):
            blocks.append((line[len("Under ") : -1], []))
        elif line.startswith("- ") and blocks:
            blocks[-1][1].append(line[2:])
    if [name for name, _ in blocks] != categories:
        return None  # not rendered with every line
    return lines[0][len("Step 1: ") :], blocks


def teach_table(run: Path) -> Path:
    info = json.loads((run / "stages.json").read_text(encoding="utf-8"))
    folder = next(s["folder"] for s in info["stages"] if s["name"] == "teach")
    return run / folder / "rationales.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+")
    args = ap.parse_args()
    print(describe())
    print(
        "| run | answers | rendered | repeating a line | titles per answer | categories "
        "| five distinct | looping within a line |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        frame = pd.read_parquet(teach_table(run))
        answers = [found for text in frame["response"] if (found := groups_of(text)) is not None]
        before = [(steps_text(p, g), g) for p, g in answers]
        after = [(steps_text(p, distinct(g)), distinct(g)) for p, g in answers]
        cells = [f"{run}", f"{len(frame):,}", f"{len(answers):,}"]
        for measure in (repeats, titles, categories, five, loops):
            cells.append(f"{measure(before)} -> {measure(after)}")
        print("| " + " | ".join(cells) + " |")


def share(values) -> str:
    values = list(values)
    return f"{100 * sum(values) / len(values):.1f}%"


def repeats(rendered) -> str:
    return share(repeated_lines(text) > 0 for text, _ in rendered)


def titles(rendered) -> str:
    return f"{sum(len(t) for _, g in rendered for _, t in g) / len(rendered):.2f}"


def categories(rendered) -> str:
    return f"{sum(len(g) for _, g in rendered) / len(rendered):.2f}"


def five(rendered) -> str:
    return share(five_distinct(parse_rationale(text).categories) for text, _ in rendered)


def loops(rendered) -> str:
    return share(looping_lines(text) > 0 for text, _ in rendered)


if __name__ == "__main__":
    main()
