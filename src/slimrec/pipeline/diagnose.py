"""The order-sensitivity diagnostic over every trained model of a run folder.

``slimrec diagnose order --run RUN`` (or the pipeline's ``diagnose/order-*`` stage, with
``diagnose.order`` in the run config) loads each fit of the run (any method, through
:func:`slimrec.methods.load_model`), perturbs the test histories inside the model's
visible window (:mod:`slimrec.eval.order`; the permutations are identical for every
model) and scores them with the same protocols the run was tested with. It writes
``order-<perturbation>.json`` (every fit) and ``.md`` (a table per protocol, mean over
seeds): in ``diagnose/`` of the run folder, or in the stage folder.

Sanity anchors: text matching never reads the history (change exactly 0, cosine 1); a
sequence model that uses the order drops. SLIM's rationales were written from the
original order and stay fixed here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from slimrec.config import load_yaml
from slimrec.data import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.eval.order import OrderConfig, order_sensitivity
from slimrec.io import write_json_atomic, write_text_atomic
from slimrec.methods import load_model
from slimrec.pipeline.artifacts import Fit, RunArtifacts
from slimrec.progress import progress
from slimrec.training import TrainConfig
from slimrec.training.trainer import model_scorer, model_user_vectors, test_eval_config

TABLE_METRICS = ("ndcg@10", "hit@10")


def diagnose_order(
    run_dir: str | Path,
    config: OrderConfig,
    *,
    device: str = "cpu",
    methods: Sequence[str] = (),
    out: str | Path | None = None,
) -> tuple[Path, list[dict[str, Any]]]:
    """Run the diagnostic on every fit of ``run_dir``'s latest invocation (or those of
    ``methods``), tables written to ``out`` (default: the run's ``diagnose/``): (the .md
    table, one row per fit)."""
    artifacts = RunArtifacts(run_dir)
    fits = artifacts.fits()
    if methods:
        unknown = sorted(set(methods) - {f.method for f in fits})
        if unknown:
            raise ConfigError(
                f"the run has no fit of method {unknown[0]!r}",
                where=artifacts.run_dir,
                fix="name one of: " + ", ".join(sorted({f.method for f in fits})),
            )
        fits = [f for f in fits if f.method in methods]
    folder = Path(out) if out is not None else artifacts.run_dir / "diagnose"
    return write_order(folder, fits, artifacts.data_dir, config, device)


def write_order(
    folder: Path,
    fits: list[Fit],
    data_dir: Path,
    config: OrderConfig,
    device: str = "cpu",
) -> tuple[Path, list[dict[str, Any]]]:
    """The diagnostic of ``fits`` (trained models of one run) on the prepared
    data of ``data_dir``, written to ``folder``: (the .md table, one row per fit)."""
    data = PreparedDataset.load(data_dir)
    histories, targets = data.split(config.split)
    rows = []
    for fit in progress(fits, desc="order diagnostic", unit="fit"):
        train = load_yaml(TrainConfig, fit.folder / "config.yaml")
        model = load_model(fit.folder, device=device)
        for protocol in train.test_protocols:
            result = order_sensitivity(
                model_scorer(model),
                histories,
                targets,
                data.n_items,
                test_eval_config(train, protocol),
                config,
                window=config.window_of(model.visible_window(train.max_len)),
                users=np.arange(len(histories)),
                user_vectors=model_user_vectors(model) if model.has_user_vectors else None,
                item_popularity=data.item_popularity("train"),
            )
            rows.append(
                {"backbone": fit.backbone, "method": fit.method, "seed": fit.seed}
                | {"protocol": protocol}
                | result
            )
    out = folder / config.name()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out.with_suffix(".json"), {"config": config.model_dump(), "fits": rows})
    table = order_table(rows, config)
    write_text_atomic(out.with_suffix(".md"), table)
    return out.with_suffix(".md"), rows


def order_table(rows: list[dict[str, Any]], config: OrderConfig) -> str:
    """Markdown: per protocol, each model (mean over seeds) original vs perturbed."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        label = f"{row['backbone']}/{row['method']}" if row["backbone"] else row["method"]
        groups[(row["protocol"], label)].append(row)
    lines = [
        f"## Order sensitivity: {config.perturbation} of the {config.split} histories",
        "",
        (
            "Inside each model's visible window"
            if config.window is None
            else f"The last {config.window} items of each model's window (all of a shorter one)"
        )
        + f"; {config.repeats} permutation(s) per user "
        f"(seed {config.seed}), identical for every model; mean over seeds "
        "(change: ± std over seeds). cos: mean cosine between the user vectors of the "
        "original and the perturbed history.",
    ]
    for protocol in dict.fromkeys(p for p, _ in groups):
        lines += ["", f"### {protocol}", ""]
        head = ["model", "seeds", "window"]
        for m in TABLE_METRICS:
            head += [f"{m}", f"{m} perturbed", "change %"]
        lines += ["| " + " | ".join([*head, "cos"]) + " |", "|---|" + "---:|" * len(head)]
        for (p, label), fits in groups.items():
            if p != protocol:
                continue
            cells = [label, str(len(fits)), "/".join(map(str, sorted({f["window"] for f in fits})))]
            for m in TABLE_METRICS:
                original = np.mean([f["original"][m] for f in fits])
                perturbed = np.mean([f["perturbed"][m][0] for f in fits])
                change = [f["change_pct"][m] for f in fits]
                cells += [f"{original:.4f}", f"{perturbed:.4f}", _pm(change)]
            cos = [f["cosine"] for f in fits if f["cosine"] is not None]
            cells.append(f"{np.mean(cos):.3f}" if cos else "-")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _pm(values: list[float]) -> str:
    mean = float(np.mean(values))
    return f"{mean:+.1f}" + (f" ± {np.std(values):.1f}" if len(values) > 1 else "")
