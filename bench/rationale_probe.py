"""Do the rationales point at the next item better than the titles they were written from?

A zero-training probe for SLIM (Wang et al., WWW 2024): SLIM's ID-agnostic variant matches
a user's rationale to item texts; here nothing is trained, every item is ranked by the
cosine between the user's text embedding and the item's, and the rank of the user's test
item is read off (full ranking, the user's history masked as slimrec's evaluation does).
The user texts compared, each on the users that have it:

* the teacher's rationale (the few users it answered),
* the student's rationale (every user; and the teacher's users alone),
* the history titles: the mean text embedding of the items the rationale read
  (:func:`slimrec.methods.slim.tables.history_text`, the ``history`` control);
* the step-3 suggestions grounded in the catalog (:mod:`slimrec.methods.slim.grounding`):
  the mean text embedding of the catalog items they resolve to, the user text a fusion
  of grounded items would read.

A rationale that reasons about the user, rather than restating the history, should place
the next item nearer the top than the titles do. The paired differences of the median
target rank carry a bootstrap 95% interval over users. Every `slimrec run` report shows
the first and last rows of this table for each source (``slimrec.methods.slim.probe``);
this script adds the teacher's users and the steps alone.

    python bench/rationale_probe.py runs/amazon-office
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from slimrec.data.prepared import PreparedDataset, items_read, rationale_cutoff
from slimrec.methods.slim.grounding import CatalogIndex, suggestion_lines
from slimrec.methods.slim.probe import median_gap, target_ranks
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.methods.slim.tables import history_text


def stage_folders(run: Path) -> dict[str, Path]:
    stages = json.loads((run / "stages.json").read_text())["stages"]
    return {s["name"]: run / s["folder"] for s in stages}


def summary(ranks: np.ndarray, n_items: int) -> str:
    hit = ranks < 10
    ndcg = np.where(hit, 1 / np.log2(ranks + 2), 0.0)
    return f"{ndcg.mean():.4f} | {hit.mean():.4f} | {np.median(ranks) / n_items:.1%} | {len(ranks)}"


def gap_text(a: np.ndarray, b: np.ndarray, n_items: int) -> str:
    """Median rank of ``a`` minus ``b`` (same users) in points of the catalog, with its
    bootstrap 95% interval."""
    gap, low, high = (100 * x / n_items for x in median_gap(a, b))
    return f"{gap:+.1f} pts [{low:+.1f}, {high:+.1f}]"


def grounded_text(
    rationales: Path, items: np.ndarray, index: CatalogIndex, n_users: int
) -> np.ndarray:
    """Per user, the mean text embedding of the catalog items their step 3 resolves to
    (zero where none resolves, or where there is no rationale)."""
    table = pd.read_parquet(rationales)
    out = np.zeros((n_users, items.shape[1]), dtype=items.dtype)
    for user, step3 in zip(table["user"].astype(int), table["step3"].fillna(""), strict=True):
        found = index.ground(suggestion_lines(str(step3)))
        if found:
            out[user] = items[found].mean(axis=0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a `slimrec run` output folder")
    args = parser.parse_args()
    folders = stage_folders(args.run)
    config = yaml.safe_load((args.run / "config.yaml").read_text())
    hold_out = int(config["teacher"]["prompt"].get("hold_out_last", 0))
    shown = int(config["teacher"]["prompt"].get("max_items", PromptConfig().max_items))
    data = PreparedDataset.load(folders["prepare"] / "data")
    items = np.load(folders["embed/items"] / "items.npy")
    teacher = np.load(folders["embed/teacher/response"] / "users.npy")
    student = np.load(folders["embed/student/response"] / "users.npy")
    train, _ = data.split("train")
    read = [items_read(h[: rationale_cutoff(len(h), hold_out)], shown) for h in train]
    titles = history_text(np.ones_like(student), items, read)  # every user (cosine: any norm)
    taught = np.flatnonzero(np.abs(teacher).sum(axis=1) > 0)
    written = np.flatnonzero(np.abs(student).sum(axis=1) > 0)
    n = data.n_items
    histories, targets = data.split("test")

    def ranks(table, users):
        return target_ranks(table, items, histories, targets, users)

    rows = {
        "teacher rationale": ranks(teacher, taught),
        "student rationale, teacher's users": ranks(student, taught),
        "history titles, teacher's users": ranks(titles, taught),
        "student rationale, every user": ranks(student, written),
        "history titles, every user": ranks(titles, written),
    }
    index, n_users = CatalogIndex.of(data), data.n_users
    grounded = {}  # row name -> the titles' row of the same users
    for source, stage in (("teacher", "teach"), ("student", "reason")):
        if stage in folders:
            table = grounded_text(folders[stage] / "rationales.parquet", items, index, n_users)
            has = np.flatnonzero(np.abs(table).sum(axis=1) > 0)
            name, same = (
                f"{source}'s grounded step-3 items ({len(has)} users)",
                f"history titles, the same {len(has)} users",
            )
            rows[name], rows[same] = ranks(table, has), ranks(titles, has)
            grounded[name] = same
    for step in ("step1", "step2", "step3"):  # where the run embedded the steps alone
        if f"embed/student/{step}" in folders:
            table = np.load(folders[f"embed/student/{step}"] / "users.npy")
            has = np.flatnonzero(np.abs(table).sum(axis=1) > 0)
            rows[f"student {step} alone ({len(has)} users)"] = ranks(table, has)
    print(f"{args.run}: {data.n_users} users, {n} items, rationales read at most the {shown} "
          f"most recent training items before the last {hold_out}\n")  # fmt: skip
    print("| user text | NDCG@10 | Hit@10 | median target rank (of items) | users |")
    print("|---|---:|---:|---:|---:|")
    for name, ranks in rows.items():
        print(f"| {name} | {summary(ranks, n)} |")
    titles_t = rows["history titles, teacher's users"]
    titles_all = rows["history titles, every user"]
    print("\nmedian rank, text minus history titles (lower is better):")
    print(f"  teacher rationale: {gap_text(rows['teacher rationale'], titles_t, n)}")
    student_t = rows["student rationale, teacher's users"]
    print(f"  student, teacher's users: {gap_text(student_t, titles_t, n)}")
    student_all = rows["student rationale, every user"]
    print(f"  student, every user: {gap_text(student_all, titles_all, n)}")
    for name, same in grounded.items():
        print(f"  {name}: {gap_text(rows[name], rows[same], n)}")


if __name__ == "__main__":
    main()
