"""Mean ± std over seeds of `bench/backbones.py` runs, and the paired slimrec - RecBole gap.

Each run folder holds one seed's ``backbones.json``. Rows are keyed by (dataset,
backbone, implementation, the protocol that picked the best epoch, seed); when two
folders give the same key the later one on the command line wins (pass superseded runs
first). Every row is read under the test protocol ``--protocol`` (history masked or
not), which each side scored itself, so both sides are scored alike. Runs made before
both protocols were recorded are skipped: they compared our masked score with RecBole's
unmasked one. The paired gap compares the two implementations seed by seed, which
removes the part of the spread that comes from the shared data split and seed-dependent
luck of both.

Usage (docs/benchmarks.md, "Reproduce", has the rest):
    python bench/seeds.py bench/results/amazon-office-masked-seed*
    python bench/seeds.py --protocol unmasked bench/results/amazon-office-unmasked-seed*
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

RECBOLE = "RecBole 1.2.1"
METRICS = ("ndcg@10", "hit@10")


Key = tuple[str, str, str, str]


def load(folders: list[Path], protocol: str) -> dict[Key, dict[int, dict[str, float]]]:
    """``{(dataset, backbone, impl, selected on): {seed: test metrics under protocol}}``."""
    rows: dict[Key, dict[int, dict[str, float]]] = defaultdict(dict)
    for folder in folders:
        if not (folder / "backbones.json").is_file():
            print(f"skipped {folder}: no backbones.json (still running?)")
            continue
        blob = json.loads((folder / "backbones.json").read_text())
        seed = blob["args"]["seed"]
        old = [r for r in blob["results"] if "test_protocols" not in r]
        if old:
            print(f"skipped {len(old)} rows of {folder}: older run, one protocol only")
        for r in blob["results"]:
            if "test_protocols" not in r:
                continue
            key = (r["dataset"], r["backbone"], r["impl"], r["select"])
            epoch_s = statistics.median(e["train_s"] for e in r["epochs"])
            run = r["test_protocols"][protocol] | {"train_s": epoch_s, "total_s": r["total_s"]}
            rows[key][seed] = run | {"epochs": r["epochs_run"], "best": r["best_epoch"]}
    return rows


def fmt(values: list[float], digits: int = 4) -> str:
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+")
    ap.add_argument("--ours", default="slimrec (causal)", help="Our implementation's label.")
    ap.add_argument(
        "--protocol",
        choices=("masked", "unmasked"),
        default="masked",
        help="test protocol read: full ranking with the history masked, or not",
    )
    args = ap.parse_args()
    rows = load(args.folders, args.protocol)
    print(f"Test metrics, full ranking, history {args.protocol}:\n")
    print(
        "| dataset | model | implementation | best epoch picked on | seeds |"
        " epochs run (best) | train s/epoch | total s | NDCG@10 | Hit@10 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (dataset, backbone, impl, select), by_seed in sorted(rows.items()):
        seeds = sorted(by_seed)
        cells = [fmt([by_seed[s][m] for s in seeds]) for m in METRICS]
        label = ",".join(map(str, seeds))
        runs = ", ".join(f"{by_seed[s]['epochs']} ({by_seed[s]['best']})" for s in seeds)
        epoch_s = fmt([by_seed[s]["train_s"] for s in seeds], digits=2)
        totals = [by_seed[s]["total_s"] for s in seeds]
        total = "–" if None in totals else fmt(totals, digits=1)
        print(
            f"| {dataset} | {backbone} | {impl} | valid, {select} | {label} | {runs} |"
            f" {epoch_s} | {total} | {cells[0]} | {cells[1]} |"
        )
    print("\nPaired by seed, ours - RecBole (scored alike); wins = seeds where ours is higher:\n")
    print(
        "| dataset | model | picked on | seeds | NDCG@10 gap | wins | Hit@10 gap | wins |"
        " RecBole / ours: train s per epoch | total s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dataset, backbone, select in sorted({(d, b, s) for d, b, _, s in rows}):
        ours = rows.get((dataset, backbone, args.ours, select))
        theirs = rows.get((dataset, backbone, RECBOLE, select))
        if not ours or not theirs:
            continue
        seeds = sorted(set(ours) & set(theirs))
        cells = []
        for m in METRICS:
            gaps = [ours[s][m] - theirs[s][m] for s in seeds]
            cells += [fmt(gaps), f"{sum(g > 0 for g in gaps)}/{len(gaps)}"]
        ratios = [theirs[s]["train_s"] / ours[s]["train_s"] for s in seeds]
        cells.append(fmt(ratios, digits=1) + "x")
        if all(x[s]["total_s"] for x in (ours, theirs) for s in seeds):
            totals = [theirs[s]["total_s"] / ours[s]["total_s"] for s in seeds]
            cells.append(fmt(totals, digits=1) + "x")
        else:
            cells.append("–")
        print(
            f"| {dataset} | {backbone} | valid, {select} | {len(seeds)} | "
            + " | ".join(cells)
            + " |"
        )


if __name__ == "__main__":
    main()
