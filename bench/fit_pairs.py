"""Compare the finished fits of a run folder pairwise, whichever invocation made them.

A long run (bench/runs/) collects fits over several sessions and configs, and its latest
``stages.json`` lists only the last invocation's stages. This reads every finished
``stages/fit-*/stage.json`` in the folder, groups fits by name (``fit/gru4rec/slim/seed0``
-> ``gru4rec/slim``), and prints each method's metric (mean ± std over seeds) and, for
each pair asked, the paired bootstrap 95% interval over test users on the seeds both
have (slimrec.eval.bootstrap, as the report computes it), with the machines that fitted
them; with ``--by-history N``, each pair again within N groups of test users by history
length (slimrec.eval.groups, as the report's "By history length"); with ``--by-text``,
among the users the student's rationales reach and the others, where they reach only some
(``reason.rationales_file``; as the report's "Users with and without a rationale").

Usage:
    .venv/bin/python bench/fit_pairs.py bench/runs/amazon-games \
        --pair gru4rec/slim-gate gru4rec/backbone+ --metric ndcg@10
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import NoReturn

import numpy as np

from slimrec.data import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.pipeline.artifacts import RunArtifacts
from slimrec.pipeline.outputs import text_coverage
from slimrec.pipeline.per_user import PerUserMetrics, groups_by_history
from slimrec.pipeline.recorded import checked_fits
from slimrec.pipeline.stage import StageRecord


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    ap.add_argument("--metric", default="ndcg@10")
    ap.add_argument("--protocols", nargs="+", default=["full", "sampled"])
    ap.add_argument("--by-history", type=int, default=0, metavar="N",
                    help="also compare within N groups of users by history length")  # fmt: skip
    ap.add_argument("--by-text", action="store_true",
                    help="also compare among the users with and without a rationale")  # fmt: skip
    args = ap.parse_args()
    if args.by_history < 0:
        ap.error("--by-history takes a number of groups, 0 or more")
    try:
        fits = checked_fits(args.run)
    except ConfigError as e:
        fail(str(e))
    labels = sorted({f.label for f in fits})
    for a, b in args.pair:
        if a not in labels or b not in labels:
            fail(f"no finished fit of {a if a not in labels else b} -- choose among: "
                 f"{', '.join(labels)}")  # fmt: skip
    per_user = PerUserMetrics(fits)
    groups: list[tuple[str, np.ndarray]] = []
    if args.by_history:
        data = PreparedDataset.load(RunArtifacts(args.run).data_dir)
        groups += [
            (f"history {g.label} items", g.users) for g in groups_by_history(data, args.by_history)
        ]
    if args.by_text:
        records = [StageRecord(**stage) for stage in RunArtifacts(args.run).stages().values()]
        found = text_coverage(records, args.run)
        if not found:
            fail("the student's rationales reach every user of this run, or none")
        groups += [(f"{label} a rationale", users) for label, users in found]
    for protocol in args.protocols:
        print(f"\n{protocol}, {args.metric}: method | seeds | mean ± std | fitted on")
        for label in labels:
            mine = sorted((f for f in fits if f.label == label), key=lambda f: f.seed)
            values = [f.record.outputs["test"][protocol][args.metric] for f in mine]
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            machines = sorted({f.record.machine or "not recorded" for f in mine})
            print(f"{label} | {[f.seed for f in mine]} | {statistics.mean(values):.4f} ± "
                  f"{std:.4f} | {'; '.join(machines)}")  # fmt: skip
        for a, b in args.pair:
            key = f"{protocol}/{args.metric}"
            found = per_user.compare(a, b, key)
            if found is None or found.interval is None:
                print(f"{a} vs {b}: undefined")
            else:
                print(f"{a} vs {b}, seeds {list(found.seeds)}: {found.mean_a:.4f} vs "
                      f"{found.mean_b:.4f}, {found.interval.format()}")  # fmt: skip
            for label, users in groups:
                within = per_user.compare(a, b, key, users)
                shown = within.interval.format() if within and within.interval else "undefined"
                means = f"{within.mean_a:.4f} vs {within.mean_b:.4f}, " if within else ""
                print(f"  {label}, {len(users):,} users: {means}{shown}")


def fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2 (as slimrec's own commands)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


if __name__ == "__main__":
    main()
