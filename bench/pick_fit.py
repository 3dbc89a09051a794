"""Do a teacher's step-3 picks fit the categories they sit under? (issue 17)

The report's *picks the first listed, in order* column says whether a model read the
candidates top down; this says whether what it picked belongs where it put it. A pick
*fits* when its title shares a word (three letters or more, a plural's "s" ignored) with
the category heading above it. The control deals the same answer's picks to its own
categories at random (50 deals, seeded): a model that files picks under the categories
they belong to scores above it, one that fills the slots in any order scores the same.
Titles that never name their category (films and their genres) score 0 on both sides.

Usage:
    .venv/bin/python bench/pick_fit.py runs/amazon-office-candidates runs/quickstart-candidates
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

import pandas as pd
from drop_repeats import groups_of

from slimrec.machine import describe

DEALS = 50


def words(text: str) -> set[str]:
    return {w.removesuffix("s") for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 2}


def fit_share(pairs: list[tuple[str, str]]) -> float:
    return sum(bool(words(category) & words(title)) for category, title in pairs) / len(pairs)


def pick_fit(responses: list[str], seed: int = 0) -> dict[str, float]:
    """Mean share of picks that fit their category, as written and as dealt at random,
    over the answers with at least two categories and one pick."""
    rng = random.Random(seed)
    written, dealt, answers = 0.0, 0.0, 0
    for text in responses:
        found = groups_of(text)
        if found is None:
            continue
        pairs = [(category, title) for category, titles in found[1] for title in titles]
        if len(found[1]) < 2 or not pairs:
            continue
        categories = [category for category, _ in pairs]
        titles = [title for _, title in pairs]
        deals = []
        for _ in range(DEALS):
            rng.shuffle(categories)
            deals.append(fit_share(list(zip(categories, titles, strict=True))))
        written += fit_share(pairs)
        dealt += sum(deals) / DEALS
        answers += 1
    return {"answers": answers, "fit": written / max(answers, 1), "dealt": dealt / max(answers, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with a teach stage")
    args = parser.parse_args()
    print(describe())
    print("| run | stage | answers | picks that fit their category | dealt at random |")
    print("|---|---|---:|---:|---:|")
    for run in args.runs:
        for table in sorted(run.glob("stages/*/rationales.parquet")):
            frame = pd.read_parquet(table)
            found = pick_fit([str(r) for r in frame["response"]])
            stage = table.parent.name.rsplit("-", 1)[0]
            print(
                f"| {run} | {stage} | {found['answers']} | {found['fit']:.1%} "
                f"| {found['dealt']:.1%} |"
            )


if __name__ == "__main__":
    main()
