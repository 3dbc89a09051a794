"""The report of a run from the fits it has recorded so far (``slimrec report``).

``slimrec run`` writes report.md once every fit of its config has finished, and a long
run gathers its fits over several sessions and configs (bench/runs/README.md): until its
last fit, it has no report, and the fits another config made never appear in one. This
renders the same report from every finished fit in the run folder, whichever invocation
made it. A fit's record is enough (its test metrics and per-user metrics); weights are
needed only for the long-tail figure, which names the fits it leaves out. A section at
the top lists the fits behind the tables, with their seeds, since cells may rest on
fewer seeds than others.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

from slimrec.config import config_hash
from slimrec.errors import ConfigError
from slimrec.io import atomic_path
from slimrec.pipeline.artifacts import Fit, RunArtifacts, recorded_fits
from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.outputs import write_outputs
from slimrec.pipeline.stage import MANIFEST, StageRecord


def checked_fits(run_dir: str | Path) -> list[Fit]:
    """Every finished fit of ``run_dir`` (:func:`recorded_fits`), refused in one line when
    there is none, when two share a name (a setting changed between invocations: they
    would be averaged as two seeds), or when one was trained on other prepared data than
    the run's latest (its per-user metrics would be paired with other users)."""
    run_dir = Path(run_dir)
    artifacts = RunArtifacts(run_dir)  # one line if it is no run folder
    fits = recorded_fits(run_dir)
    if not fits:
        raise ConfigError(
            "the run has no finished fit yet",
            where=run_dir / "stages",
            fix="run `slimrec run` until at least one fit stage finishes",
        )
    folders: dict[str, list[str]] = defaultdict(list)
    for fit in fits:
        folders[fit.record.name].append(fit.record.folder)
    for name, found in folders.items():
        if len(found) > 1:
            raise ConfigError(
                f"two finished fits of {name}: {', '.join(sorted(found))}",
                where=run_dir / "stages",
                fix="delete the folder of the one not to report",
            )
    data_key = artifacts.stage_key("prepare")
    for fit in fits:
        manifest = json.loads((run_dir / fit.record.folder / MANIFEST).read_text("utf-8"))
        if manifest.get("inputs", {}).get("data") != data_key:
            raise ConfigError(
                f"{fit.record.name} was trained on other prepared data than the run's",
                where=run_dir / fit.record.folder,
                fix="delete that folder, or run it again with the run's data settings",
            )
    return fits


def report_recorded(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write report.md, results.json (and popularity.png) of ``run_dir``'s recorded fits
    into ``out`` (default: the run folder, beside the run's config.yaml, which a report
    elsewhere gets a copy of); return report.md's path."""
    run_dir = Path(run_dir)
    fits = checked_fits(run_dir)
    artifacts = RunArtifacts(run_dir)
    config = artifacts.config
    found_backbones = [f.backbone for f in fits if f.backbone]
    # Validated again: a recorded fit of a method this version no longer has is one line.
    shown = RunConfig.model_validate(
        config.model_dump()
        | {
            "backbones": list(dict.fromkeys([*config.backbones, *found_backbones])),
            "methods": list(dict.fromkeys([*config.methods, *(f.method for f in fits)])),
            "seeds": sorted({f.seed for f in fits}),
        }
    )
    upstream = [
        StageRecord(**stage)
        for name, stage in artifacts.stages().items()
        if not name.startswith(("fit/", "report"))
    ]
    folder = Path(out) if out is not None else run_dir
    folder.mkdir(parents=True, exist_ok=True)
    if folder.resolve() != run_dir.resolve():
        with atomic_path(folder / "config.yaml") as tmp:
            shutil.copyfile(run_dir / "config.yaml", tmp)
    write_outputs(
        folder,
        config=shown,
        config_hash=config_hash(config),
        run_dir=run_dir,
        data_dir=artifacts.data_dir,
        dataset_stats=artifacts.stage("prepare")[1]["stats"],
        fits=fits,
        records=[*upstream, *(f.record for f in fits)],
        preamble=[fits_section(fits)],
    )
    return folder / "report.md"


def fits_section(fits: list[Fit]) -> str:
    """``## Fits behind these tables``: every method with its seeds."""
    seeds: dict[str, list[int]] = defaultdict(list)
    for fit in fits:
        seeds[fit.label].append(fit.seed)
    rows = [f"| {label} | {', '.join(map(str, sorted(s)))} |" for label, s in seeds.items()]
    return (
        "## Fits behind these tables\n\n"
        "Every finished fit in the run folder, whichever invocation of the run made it. A "
        "cell is the mean over the seeds its method has, so two cells side by side may rest "
        "on different seeds; an improvement and its interval compare the seeds both methods "
        "have. The stage costs, the rationales and any diagnostics are those of the run's "
        "latest invocation (config.yaml).\n\n"
        "| method | seeds |\n|---|---|\n" + "\n".join(sorted(rows)) + "\n"
    )
