"""The report stage: results table, long-tail numbers and plot, report.md, results.json.

Everything it reads is a finished upstream stage (fit results, trained run folders, the
prepared dataset), so it is cached like any other stage and then copied to the run
folder's top level where people look for it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slimrec.eval.results import ResultTable
from slimrec.io import write_json_atomic, write_text_atomic
from slimrec.methods.specs import METHODS
from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.plots import group_shares, plot_popularity, popularity_groups
from slimrec.pipeline.report import hardware, render_report, run_label
from slimrec.pipeline.stage import StageRecord

REPORT_FILES = ("report.md", "results.json", "popularity.png")


@dataclass(frozen=True)
class Fit:
    """One fitted model: which backbone (``None``: ID-agnostic), method and seed, where."""

    backbone: str | None
    method: str
    seed: int
    record: StageRecord

    @property
    def label(self) -> str:
        return run_label(self.backbone, self.method)


def result_table(fits: Sequence[Fit], dataset: str) -> ResultTable:
    table = ResultTable()
    for fit in fits:
        for protocol, metrics in fit.record.outputs["test"].items():
            table.add(
                method=fit.label, seed=fit.seed, metrics=metrics, protocol=protocol, dataset=dataset
            )
    return table


def popularity_shares(
    fits: Sequence[Fit], run_dir: Path, data: Any, *, n_groups: int, top_k: int
) -> dict[str, dict[str, list[float]]]:
    """``{backbone: {method: shares}}`` from the first seed's models, test histories.

    The ID-agnostic model has no backbone: it appears in every panel. ``test targets``
    (what users actually chose next) is the reference.
    """
    from slimrec.methods import recommend

    groups = popularity_groups(data.item_popularity("train"), n_groups)
    users = np.arange(data.n_users)
    _, targets = data.split("test")
    first_seed = fits[0].seed
    chosen = [f for f in fits if f.seed == first_seed]
    shares: dict[str, dict[str, list[float]]] = {}
    cached: dict[str, list[float]] = {}
    for fit in chosen:
        run = run_dir / fit.record.folder / fit.record.outputs["run"]
        items, _ = recommend(run, data, users, top_k, history="test")
        cached[fit.label] = group_shares(items, groups, n_groups).round(6).tolist()
    panels = list(dict.fromkeys(f.backbone for f in chosen if f.backbone)) or ["ID-agnostic"]
    for panel in panels:
        series = {f.method: cached[f.label] for f in chosen if f.backbone in (panel, None)}
        series["test targets"] = group_shares(targets, groups, n_groups).round(6).tolist()
        shares[panel] = series
    return shares


def write_outputs(
    folder: Path,
    *,
    config: RunConfig,
    config_hash: str,
    run_dir: Path,
    data_dir: Path,
    dataset_stats: dict[str, Any],
    fits: Sequence[Fit],
    records: Sequence[StageRecord],
) -> dict[str, Any]:
    """Write report.md, results.json and popularity.png into ``folder``; return outputs."""
    from slimrec.data import PreparedDataset

    data = PreparedDataset.load(data_dir)
    table = result_table(fits, data.name)
    rep = config.report
    popularity = None
    plot_file = None
    if rep.plot and fits:
        popularity = popularity_shares(
            fits, run_dir, data, n_groups=rep.popularity_groups, top_k=rep.top_k
        )
        plot_popularity(
            {k: {m: np.asarray(v) for m, v in s.items()} for k, s in popularity.items()},
            folder / "popularity.png",
            top_k=rep.top_k,
            title=f"{config.name}: {data.name}",
        )
        plot_file = "popularity.png"
    hw = hardware()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    markdown = render_report(
        name=config.name,
        dataset=data.name,
        dataset_stats=dataset_stats,
        config_hash=config_hash,
        table=table,
        backbones=config.backbones,
        protocols=config.eval.protocols,
        metrics=rep.metrics,
        digits=rep.digits,
        seeds=config.seeds,
        records=records,
        popularity=popularity,
        plot_file=plot_file,
        top_k=rep.top_k,
        hw=hw,
        date=date,
        legend={m: METHODS[m].description for m in config.methods},
    )
    write_text_atomic(folder / "report.md", markdown)
    results = {
        "name": config.name,
        "config_hash": config_hash,
        "date": date,
        "hardware": hw,
        "dataset": {"name": data.name, "stats": dataset_stats},
        "protocols": list(config.eval.protocols),
        "results": table.to_json(),
        "fits": [
            {
                "backbone": f.backbone,
                "method": f.method,
                "seed": f.seed,
                "stage": f.record.folder,
                "best_epoch": f.record.outputs.get("best_epoch"),
                "epochs_run": f.record.outputs.get("epochs_run"),
                "seconds": f.record.compute_seconds,
            }
            for f in fits
        ],
        "popularity": popularity,
        "stages": [
            {k: v for k, v in asdict(r).items() if k not in ("status", "seconds", "outputs")}
            for r in records
        ],
    }
    write_json_atomic(folder / "results.json", results)
    return {"files": [f for f in REPORT_FILES if (folder / f).is_file()]}
