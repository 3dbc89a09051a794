"""Compare the finished fits of a run folder pairwise, whichever invocation made them.

A long run (bench/runs/) collects fits over several sessions and configs, and its latest
``stages.json`` lists only the last invocation's stages. This reads every finished
``stages/fit-*/stage.json`` in the folder, groups fits by name (``fit/gru4rec/slim/seed0``
-> ``gru4rec/slim``), and prints each method's metric (mean ± std over seeds) and, for
each pair asked, the paired bootstrap 95% interval over test users on the seeds both
have (slimrec.eval.bootstrap, as the report computes it), with the machines that fitted
them.

Usage:
    .venv/bin/python bench/fit_pairs.py bench/runs/amazon-games \
        --pair gru4rec/slim-gate gru4rec/backbone+ --metric ndcg@10
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from slimrec.eval.bootstrap import paired_bootstrap
from slimrec.training.trainer import PER_USER


def finished_fits(run: Path) -> dict[str, dict[int, Path]]:
    """``{"gru4rec/slim": {seed: fit folder}}`` of every finished fit in ``run``."""
    found: dict[str, dict[int, Path]] = {}
    for manifest in sorted(run.glob("stages/fit-*/stage.json")):
        name = json.loads(manifest.read_text())["name"]  # fit/<backbone>/<method>/seed<k>
        *label, seed = name.split("/")[1:]
        found.setdefault("/".join(label), {})[int(seed.removeprefix("seed"))] = manifest.parent
    return found


def per_user(folder: Path, key: str) -> np.ndarray:
    return np.load(folder / PER_USER)[key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--pair", nargs=2, action="append", default=[], metavar=("A", "B"))
    ap.add_argument("--metric", default="ndcg@10")
    ap.add_argument("--protocols", nargs="+", default=["full", "sampled"])
    args = ap.parse_args()
    fits = finished_fits(args.run)
    if not fits:
        raise SystemExit(f"error: no finished fit in {args.run}/stages -- run `slimrec run` first")
    for protocol in args.protocols:
        key = f"{protocol}/{args.metric}"
        print(f"\n{protocol}, {args.metric}: method | seeds | mean ± std | fitted on")
        for label, seeds in sorted(fits.items()):
            means = [float(per_user(f, key).mean()) for f in seeds.values()]
            std = statistics.stdev(means) if len(means) > 1 else 0.0
            machines = {
                json.loads((f / "stage.json").read_text()).get("machine") for f in seeds.values()
            }
            print(f"{label} | {sorted(seeds)} | {statistics.mean(means):.4f} ± {std:.4f} | "
                  f"{'; '.join(sorted(m or 'not recorded' for m in machines))}")  # fmt: skip
        for a, b in args.pair:
            if a not in fits or b not in fits:
                raise SystemExit(f"error: no finished fit of {a if a not in fits else b} "
                                 f"-- choose among: {', '.join(sorted(fits))}")  # fmt: skip
            seeds = sorted(set(fits[a]) & set(fits[b]))
            interval = paired_bootstrap(
                np.stack([per_user(fits[a][s], key) for s in seeds]),
                np.stack([per_user(fits[b][s], key) for s in seeds]),
            )
            text = interval.format() if interval else "undefined (B scores 0)"
            print(f"{a} vs {b}, seeds {seeds}: {text}")


if __name__ == "__main__":
    main()
