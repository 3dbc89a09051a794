"""Does SLIM's text help, and does the fusion or the leak decide it? One table, one run.

For a pipeline config, runs the whole pipeline once per rationale hold-out (0: the
rationale was written from the whole training part, so every fused training target is
one it has read -- the paper's setting; 1: written without each user's last training
item, and fused only at that target) with every fusion design and text control, over
several seeds, then prints one table side by side: NDCG@10 (mean ± std over seeds) under
both protocols, the best epochs, and paired bootstrap 95% intervals of SLIM against
Backbone+, zero text and shuffled text. Each run folder is a normal cached pipeline run
(re-running reuses every finished stage; an interrupted run resumes), with its own
report.md.

Usage (docs/benchmarks.md, "SLIM fusion"):
    python bench/slim_fusion.py --config configs/quickstart.yaml --out runs/probe-quickstart
    python bench/slim_fusion.py --config configs/amazon-office.yaml --out runs/probe-office \
        --backbones sasrec --results bench/results/slim-fusion-amazon-office
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from slimrec.config import load_yaml
from slimrec.io import write_json_atomic, write_text_atomic
from slimrec.machine import describe
from slimrec.pipeline import run_pipeline
from slimrec.pipeline.artifacts import Fit
from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.per_user import PerUserMetrics

METHODS = [
    "backbone",
    "backbone+",
    "slim-",
    "slim",
    "slim-concat",
    "slim-gate",
    "slim-zero-text",
    "slim-shuffled-text",
    "text-matching",
]
VERSUS = ("backbone+", "slim-zero-text", "slim-shuffled-text")


def fits_of(outcome) -> list[Fit]:
    """The fitted models of a finished run (its fit/[backbone/]method/seedN stages)."""
    return [
        Fit.of(record, outcome.run_dir / record.folder / record.outputs["run"])
        for record in outcome.records
        if record.name.startswith("fit/")
    ]


def mean_std(values: list[float]) -> str:
    if not values:
        return "–"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="one run folder per hold-out in it")
    ap.add_argument("--hold-out", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--backbones", nargs="+", default=None, help="default: the config's")
    ap.add_argument("--results", type=Path, default=None, help="write table.md + results.json")
    args = ap.parse_args()

    base = load_yaml(RunConfig, args.config)
    backbones = args.backbones or base.backbones
    rows: dict[tuple[str, str, int], dict] = {}
    for k in args.hold_out:
        prompt = base.teacher.prompt.model_copy(update={"hold_out_last": k})
        config = base.model_copy(
            update={
                "teacher": base.teacher.model_copy(update={"prompt": prompt}),
                "methods": args.methods,
                "seeds": args.seeds,
                "backbones": backbones,
            }
        )
        config = RunConfig.model_validate(config.model_dump())  # validated like a file
        run_dir = args.out / f"holdout{k}"
        outcome = run_pipeline(config, run_dir)
        fits = fits_of(outcome)
        find = PerUserMetrics(fits).interval
        for fit in fits:
            row = rows.setdefault((fit.label, fit.method, k), {"epochs": []})
            row["epochs"].append(fit.record.outputs["best_epoch"])
            for protocol, metrics in fit.record.outputs["test"].items():
                row.setdefault(protocol, []).append(metrics["ndcg@10"])
            row["n_users"] = int(fit.record.outputs["test"]["full"]["n_users"])
        for fit in fits:
            if fit.seed != args.seeds[0] or fit.method != "slim":
                continue
            for other in VERSUS:
                label = fit.label.rsplit("/", 1)[0] + "/" + other if fit.backbone else other
                for protocol in ("full", "sampled"):
                    found = find(fit.label, label, f"{protocol}/ndcg@10")
                    if found is not None:
                        rows[(fit.label, "slim", k)][f"vs {other} ({protocol})"] = found.format()

    lines = [
        f"CPU: {describe()}. Config {args.config}, seeds {args.seeds}, NDCG@10 mean ± std.",
        "",
        "| model | hold-out | test users | full | sampled | best epochs "
        + "".join(f"| SLIM vs {o} (full) " for o in VERSUS)
        + "|",
        "|---|---:|---:|---:|---:|---|" + "---:|" * len(VERSUS),
    ]
    for (label, _method, k), row in sorted(rows.items(), key=lambda r: (r[0][2], r[0][0])):
        cells = [
            label,
            str(k),
            str(row["n_users"]),
            mean_std(row.get("full", [])),
            mean_std(row.get("sampled", [])),
            ", ".join(map(str, row["epochs"])),
            *(row.get(f"vs {o} (full)", "") for o in VERSUS),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        write_text_atomic(args.results / "table.md", table)
        blob = {f"{label}|{k}": row for (label, _m, k), row in rows.items()}
        write_json_atomic(args.results / "results.json", {"cpu": describe(), "rows": blob})


if __name__ == "__main__":
    main()
