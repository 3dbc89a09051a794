"""Mean ± std over seeds of `bench/backbones.py` runs, and the paired slimrec - RecBole gap.

Each run folder holds one seed's ``backbones.json``. Rows are keyed by (dataset,
backbone, implementation, seed); when two folders give the same key the later one on
the command line wins (pass superseded runs first). Our rows are read as RecBole scores
them (``test_recbole_masking``: a test target that repeats a history item is a miss), so
both sides are scored alike. The paired gap compares the two implementations seed by
seed, which removes the part of the spread that comes from the shared data split and
seed-dependent luck of both.

Usage:
    python bench/seeds.py bench/results/amazon-office-seed{0,1,2} \\
        bench/results/amazon-office-min-steps-seed{0,1,2} \\
        bench/results/amazon-office-more-seeds-seed*
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

RECBOLE = "RecBole 1.2.1"
METRICS = ("ndcg@10", "hit@10")


def load(folders: list[Path]) -> dict[tuple[str, str, str], dict[int, dict[str, float]]]:
    """``{(dataset, backbone, impl): {seed: test metrics scored as RecBole}}``."""
    rows: dict[tuple[str, str, str], dict[int, dict[str, float]]] = defaultdict(dict)
    for folder in folders:
        blob = json.loads((folder / "backbones.json").read_text())
        seed = blob["args"]["seed"]
        for r in blob["results"]:
            test = r.get("test_recbole_masking") or r["test"]
            rows[(r["dataset"], r["backbone"], r["impl"])][seed] = test
    return rows


def fmt(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4f}"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--ours", default="slimrec (causal)", help="Our implementation's label.")
    args = ap.parse_args()
    rows = load(args.folders)
    print("| dataset | model | implementation | seeds | NDCG@10 | Hit@10 |")
    print("|---|---|---|---|---|---|")
    for (dataset, backbone, impl), by_seed in sorted(rows.items()):
        seeds = sorted(by_seed)
        cells = [fmt([by_seed[s][m] for s in seeds]) for m in METRICS]
        label = ",".join(map(str, seeds))
        print(f"| {dataset} | {backbone} | {impl} | {label} | {cells[0]} | {cells[1]} |")
    print("\nPaired by seed, ours - RecBole (scored alike); wins = seeds where ours is higher:\n")
    print("| dataset | model | seeds | NDCG@10 gap | wins | Hit@10 gap | wins |")
    print("|---|---|---|---|---|---|---|")
    for dataset, backbone in sorted({(d, b) for d, b, _ in rows}):
        ours = rows.get((dataset, backbone, args.ours))
        theirs = rows.get((dataset, backbone, RECBOLE))
        if not ours or not theirs:
            continue
        seeds = sorted(set(ours) & set(theirs))
        cells = []
        for m in METRICS:
            gaps = [ours[s][m] - theirs[s][m] for s in seeds]
            cells += [fmt(gaps), f"{sum(g > 0 for g in gaps)}/{len(gaps)}"]
        print(f"| {dataset} | {backbone} | {len(seeds)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
