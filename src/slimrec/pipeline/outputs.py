"""The report stage: results table, long-tail numbers and plot, report.md, results.json.

Everything it reads is a finished upstream stage (fit results, trained run folders, the
prepared dataset), so it is cached like any other stage and then copied to the run
folder's top level where people look for it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from slimrec.eval.results import ResultTable
from slimrec.io import write_json_atomic, write_text_atomic
from slimrec.machine import hardware
from slimrec.methods.slim.tables import with_text_rows
from slimrec.pipeline.artifacts import Fit
from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.per_user import PerUserMetrics, groups_by_history
from slimrec.pipeline.plots import group_shares, plot_popularity, popularity_groups
from slimrec.pipeline.report import render_report
from slimrec.pipeline.stage import StageRecord

REPORT_FILES = ("report.md", "results.json", "popularity.png")


def result_table(fits: Sequence[Fit], dataset: str) -> ResultTable:
    table = ResultTable()
    for fit in fits:
        for protocol, metrics in fit.record.outputs["test"].items():
            table.add(
                method=fit.label, seed=fit.seed, metrics=metrics, protocol=protocol, dataset=dataset
            )
    return table


def rationale_quality(
    config: RunConfig, records: Sequence[StageRecord], run_dir: Path, data: Any = None
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Teacher and student rationales: parse, cap-hit, repeated-line, echo and
    five-distinct-categories rates per source (:mod:`slimrec.methods.slim.rationale_checks`),
    step 3's grounding in the catalog of ``data`` (when given), where the whole answer's
    embedding ranks the next item against the titles it read
    (:mod:`slimrec.methods.slim.probe`, when the run embedded both), and one user's
    rationale from each (the first user both wrote for)."""
    import pandas as pd

    from slimrec.methods.slim.grounding import run_grounding
    from slimrec.methods.slim.probe import probe
    from slimrec.methods.slim.rationale_checks import table_rates

    caps = {
        "teach": ("teacher", config.teacher.sampling.max_new_tokens),
        "reason": ("student", config.reason.sampling.max_new_tokens),
        "reuse/student": ("student", config.reason.sampling.max_new_tokens),
    }
    tables = {
        r.name: run_dir / r.folder / r.outputs["table"]
        for r in records
        if r.name.startswith("embed/") and "table" in r.outputs
    }
    rows, frames = [], {}
    for record in records:
        if record.name not in caps or "rationales" not in record.outputs:
            continue
        source, cap = caps[record.name]
        frame = pd.read_parquet(run_dir / record.folder / record.outputs["rationales"])
        if not len(frame):
            continue
        frames[source] = frame
        row = {"source": source_label(source, str(frame["model"].iloc[0]), config)}
        row["answers"] = len(frame)
        row |= table_rates(frame, cap)
        if data is not None:
            prompt = config.teacher.prompt
            found = run_grounding(frame, data, prompt.hold_out_last, prompt=prompt)
            row |= {"grounded": found.grounded_share, "new": found.new_share}
            row |= {"hit": found.hit_rate, "suggestions": found.suggestions}
            row |= {"popular_hit": found.popular_hit_rate}
            if found.pool_hit_rate is not None:
                row["pool_hit"] = found.pool_hit_rate
                row["in_listed_order"] = listed_order_rate(frame)
            texts = tables.get(f"embed/{source}/response")
            if texts is not None and "embed/items" in tables:
                found_probe = probe(
                    np.load(texts),
                    np.load(tables["embed/items"]),
                    data,
                    config.teacher.prompt.hold_out_last,
                    config.teacher.prompt.max_items,
                )
                if found_probe is not None:
                    row["probe"] = asdict(found_probe)  # results.json keeps it
        rows.append(row)
    samples: dict[str, str] = {}
    if frames:
        common = set.intersection(*(set(f["user"]) for f in frames.values()))
        if common:
            user = min(common)
            for source, frame in frames.items():
                text = frame.loc[frame["user"] == user, "response"].iloc[0]
                samples[f"The {source}'s rationale for user index {user}"] = str(text)
    return rows, samples


def listed_order_rate(frame: Any) -> float:
    """Share of a rationales table's answers that pick candidates in the order listed
    (:func:`~slimrec.methods.slim.candidate_labels.in_listed_order`)."""
    from slimrec.methods.slim.candidate_labels import in_listed_order, offered

    answered = zip(frame["response"], frame["prompt"], strict=True)
    ordered = [in_listed_order(str(a), offered(json.loads(p)[-1]["content"])) for a, p in answered]
    return sum(ordered) / len(ordered)


def source_label(source: str, model: str, config: RunConfig) -> str:
    """A rationale table's row label: who wrote it, and, for a structured teacher, that
    what it said twice was dropped (its repeated-line rate is then 0 by construction)."""
    teacher = config.teacher
    dropped = source == "teacher" and teacher.structured and teacher.drop_repeats
    return f"{source} ({model}{'; repeats dropped when rendered' if dropped else ''})"


def popularity_shares(
    fits: Sequence[Fit], run_dir: Path, data: Any, *, n_groups: int, top_k: int
) -> tuple[dict[str, dict[str, list[float]]], list[str]]:
    """``{backbone: {method: shares}}`` from the first seed's models, test histories, and
    the labels of the models left out because their weights are not here (fits whose
    record alone travelled from another machine).

    The ID-agnostic model has no backbone: it appears in every panel. ``test targets``
    (what users actually chose next) is the reference.
    """
    from slimrec.methods import has_model, recommend

    groups = popularity_groups(data.item_popularity("train"), n_groups)
    users = np.arange(data.n_users)
    _, targets = data.split("test")
    first_seed = fits[0].seed
    # DELRec ranks only the candidates written in its prompt: no catalogue, no share.
    chosen: list[Fit] = []
    missing: list[str] = []
    for f in fits:
        if f.seed != first_seed or not _ranks_catalogue(f.folder):
            continue
        if has_model(f.folder):
            chosen.append(f)
        else:
            missing.append(f.label)
    shares: dict[str, dict[str, list[float]]] = {}
    if not chosen:
        return shares, missing
    cached: dict[str, list[float]] = {}
    for fit in chosen:
        run = fit.folder
        items, _ = recommend(run, data, users, top_k, history="test")
        cached[fit.label] = group_shares(items, groups, n_groups).round(6).tolist()
    panels = list(dict.fromkeys(f.backbone for f in chosen if f.backbone)) or ["ID-agnostic"]
    for panel in panels:
        series = {f.method: cached[f.label] for f in chosen if f.backbone in (panel, None)}
        series["test targets"] = group_shares(targets, groups, n_groups).round(6).tolist()
        shares[panel] = series
    return shares, missing


def _ranks_catalogue(run: Path) -> bool:
    from slimrec.config import load_yaml
    from slimrec.methods import METHODS
    from slimrec.training import TrainConfig

    method = load_yaml(TrainConfig, run / "config.yaml").method
    return method is None or METHODS[method].method_cls.ranks_catalogue


def legend(config: RunConfig, method: str) -> str:
    """A method's description, with the run's own settings of it when it has any."""
    options = config.method_options.get(method)
    settings = ", ".join(f"{k}: {v}" for k, v in (options or {}).items())
    return config.method(method).description + (f" (this run: {settings})" if settings else "")


def text_coverage(records: Sequence[StageRecord], run_dir: Path) -> list[tuple[str, np.ndarray]]:
    """``[("with", users), ("without", users)]``: the test users the student's rationales
    reach and the others, where they reach some but not all (else ``[]``)."""
    for record in records:
        if record.name == "embed/student/response" and "table" in record.outputs:
            table = np.load(run_dir / record.folder / record.outputs["table"])
            reached = with_text_rows(table)
            if reached.any() and not reached.all():
                return [("with", np.flatnonzero(reached)), ("without", np.flatnonzero(~reached))]
    return []


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
    preamble: Sequence[str] = (),
) -> dict[str, Any]:
    """Write report.md, results.json and popularity.png into ``folder``; return outputs.
    ``preamble``: markdown sections to put before the results."""
    from slimrec.data import PreparedDataset

    data = PreparedDataset.load(data_dir)
    table = result_table(fits, data.name)
    rep = config.report
    popularity = None
    plot_file = None
    without_weights: list[str] = []
    if rep.plot and fits:
        popularity, without_weights = popularity_shares(
            fits, run_dir, data, n_groups=rep.popularity_groups, top_k=rep.top_k
        )
        if popularity:
            plot_popularity(
                {k: {m: np.asarray(v) for m, v in s.items()} for k, s in popularity.items()},
                folder / "popularity.png",
                top_k=rep.top_k,
                title=f"{config.name}: {data.name}",
            )
            plot_file = "popularity.png"
    quality, samples = rationale_quality(config, records, run_dir, data)
    hw = hardware()
    per_user = PerUserMetrics(fits)
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
        without_weights=without_weights,
        top_k=rep.top_k,
        hw=hw,
        date=date,
        legend={m: legend(config, m) for m in config.methods},
        history=groups_by_history(data, rep.history_groups),
        coverage=text_coverage(records, run_dir),
        compare=per_user.compare,
        preamble=preamble,
        n_test_users=data.n_users,
        quality=quality,
        samples=samples,
        negatives=config.eval.negatives,
        diagnostics=[
            (run_dir / r.folder / r.outputs["table"]).read_text(encoding="utf-8")
            for r in records
            if r.kind == "diagnose"
        ],
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
        "rationales": quality,
        "stages": [
            {k: v for k, v in asdict(r).items() if k not in ("status", "seconds", "outputs")}
            for r in records
        ],
    }
    write_json_atomic(folder / "results.json", results)
    return {"files": [f for f in REPORT_FILES if (folder / f).is_file()]}
