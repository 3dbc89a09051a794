"""What a teacher's or student's answers over offered candidates say (issue 17).

The report's *picks in the order listed* column says whether a model read the candidates
(`teacher.prompt.candidates`) top down. Two more checks of content, per rationales table:

- **Picks that fit their category.** A pick *fits* when its title shares a word (three
  letters or more, a plural's "s" ignored, filler words left out) with the category
  heading above it. The control deals the same answer's picks to its own categories at
  random (50 deals, seeded): a model that files picks under the categories they belong to
  scores above it, one that fills the slots in any order scores the same. Titles that
  never name their category (films and their genres) score 0 on both sides.
- **Where step 1's words come from.** Step 1 should describe the user; a model that reads
  the longer candidate block as the user's purchases describes the candidates instead.
  The share of step 1's content words (four letters or more, filler words left out)
  found in the history's titles, the share found only in the candidates' titles, and the
  share of users whose step 1 takes more words from the candidates alone.

Usage:
    .venv/bin/python bench/candidate_content.py runs/amazon-office-candidates \
        runs/quickstart-candidates
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import pandas as pd
from drop_repeats import groups_of

from slimrec.machine import describe
from slimrec.methods.slim.candidate_labels import offered
from slimrec.methods.slim.parse import parse_rationale

DEALS = 50
FILLER_WORDS = """
user have they their them with that this also like more some other these those from
into very which such what prefer preference purchase purchased variety product
interested particularly including include taste high quality durable versatile item
enjoy range different variou well seem used using
"""
FILLER = frozenset(FILLER_WORDS.split())


def words(text: str, shortest: int) -> set[str]:
    """Lower-case words of at least ``shortest`` letters, a plural's "s" dropped, no filler."""
    found = re.findall(r"[a-z]+", text.lower())
    return {w.removesuffix("s") for w in found if len(w) >= shortest} - FILLER


def fit_share(pairs: list[tuple[str, str]]) -> float:
    fits = sum(bool(words(category, 3) & words(title, 3)) for category, title in pairs)
    return fits / len(pairs)


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


def step1_source(frame: pd.DataFrame) -> dict[str, float]:
    history_share, candidate_share, candidate_led, answers = 0.0, 0.0, 0, 0
    for response, prompt in zip(frame["response"], frame["prompt"], strict=True):
        # every user turn: a template asked in two turns lists the candidates in the second
        message = "\n".join(m["content"] for m in json.loads(prompt) if m["role"] == "user")
        if "<history>" not in message:
            continue
        history = words(message.split("<history>", 1)[1].split("</history>", 1)[0], 4)
        candidates = words(" ".join(offered(message).values()), 4) - history
        summary = words(parse_rationale(str(response)).summary, 4)
        if not summary:
            continue
        from_history = len(summary & history) / len(summary)
        from_candidates = len(summary & candidates) / len(summary)
        history_share += from_history
        candidate_share += from_candidates
        candidate_led += from_candidates > from_history
        answers += 1
    n = max(answers, 1)
    return {
        "answers": answers,
        "history": history_share / n,
        "candidates": candidate_share / n,
        "candidate_led": candidate_led / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders")
    args = parser.parse_args()
    print(describe())
    print(
        "| run | stage | answers | picks that fit their category | dealt at random "
        "| step-1 words from the history | from the candidates only "
        "| users whose step 1 leans on the candidates |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for run in args.runs:
        for table in sorted(run.glob("stages/*/rationales.parquet")):
            frame = pd.read_parquet(table)
            picks = pick_fit([str(r) for r in frame["response"]])
            source = step1_source(frame)
            stage = table.parent.name.rsplit("-", 1)[0]
            print(
                f"| {run} | {stage} | {len(frame)} | {picks['fit']:.1%} "
                f"| {picks['dealt']:.1%} | {source['history']:.1%} "
                f"| {source['candidates']:.1%} | {source['candidate_led']:.1%} |"
            )


if __name__ == "__main__":
    main()
