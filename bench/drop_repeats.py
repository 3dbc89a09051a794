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
from slimrec.methods.slim.rationale_checks import five_distinct, looping_lines, repeated_lines
from slimrec.methods.slim.structured import distinct


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


def rendered(preferences: str, groups: list[tuple[str, list[str]]]) -> str:
    lines = [f"Step 1: {preferences}", "Step 2:"]
    lines += [f"{n}. {name}" for n, (name, _) in enumerate(groups, start=1)] + ["Step 3:"]
    for name, titles in groups:
        if titles:
            lines += [f"Under {name}:"] + [f"- {title}" for title in titles]
    return "\n".join(lines)


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
        found = [(text, groups_of(text)) for text in frame["response"]]
        pairs = [(text, parsed) for text, parsed in found if parsed is not None]
        after = [(p, distinct(g)) for _, (p, g) in pairs]
        texts = [rendered(p, g) for p, g in after]

        def share(values) -> str:
            values = list(values)
            return f"{100 * sum(values) / len(values):.1f}%"

        titles = [sum(len(t) for _, t in g) for _, (_, g) in pairs]
        kept = [sum(len(t) for _, t in g) for _, g in after]
        categories = [len(g) for _, g in after]

        def five(groups) -> bool:
            return five_distinct("\n".join(f"{n}. {c}" for n, (c, _) in enumerate(groups, 1)))

        print(
            f"| {run} | {len(frame):,} | {len(pairs):,} "
            f"| {share(repeated_lines(t) > 0 for t, _ in pairs)} -> "
            f"{share(repeated_lines(t) > 0 for t in texts)} "
            f"| {sum(titles) / len(pairs):.2f} -> {sum(kept) / len(pairs):.2f} "
            f"| {sum(len(g) for _, (_, g) in pairs) / len(pairs):.2f} -> "
            f"{sum(categories) / len(pairs):.2f} "
            f"| {share(five(g) for _, (_, g) in pairs)} -> {share(five(g) for _, g in after)} "
            f"| {share(looping_lines(t) > 0 for t, _ in pairs)} -> "
            f"{share(looping_lines(t) > 0 for t in texts)} |"
        )


if __name__ == "__main__":
    main()
