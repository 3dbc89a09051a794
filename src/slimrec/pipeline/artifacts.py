"""Find the artifacts of a finished ``slimrec run`` folder, in one place.

Serving, the ``recommend`` command and analyses need the prepared data, the rationale
files, the student's adapter and the trained models of a run. Their folders are named by
stage keys (``stages/<name>-<key>/``), so nothing outside this module should build those
paths: :class:`RunArtifacts` reads ``stages.json`` (the stages of the run's latest
invocation, with their folders and outputs) and ``config.yaml``, and answers by stage
name. A missing or unfinished piece is a one-line :class:`~slimrec.errors.ConfigError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from slimrec.errors import ConfigError
from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.stage import MANIFEST, STAGES_FILE, StageRecord

# ``train`` fields the pipeline fills in per fit (see RunConfig._train_leaves_loops_alone).


@dataclass(frozen=True)
class Fit:
    """One trained model of a run: which backbone (None: a method without one), method and
    seed; ``folder`` the trained run folder, ``record`` its fit stage (key, test metrics in
    ``outputs``, compute time)."""

    backbone: str | None
    method: str
    seed: int
    folder: Path
    record: StageRecord

    @classmethod
    def of(cls, record: StageRecord, folder: Path) -> Fit:
        """The fit of stage ``record`` (``fit/<backbone>/<method>/seed<k>``, or
        ``fit/<method>/seed<k>`` without a backbone), trained in ``folder``."""
        parts = record.name.split("/")
        backbone = parts[1] if len(parts) == 4 else None
        method, seed = parts[-2], int(parts[-1].removeprefix("seed"))
        return cls(backbone, method, seed, folder, record)

    @property
    def label(self) -> str:
        """``sasrec/slim``, or the method alone when it has no backbone."""
        return f"{self.backbone}/{self.method}" if self.backbone else self.method


class RunArtifacts:
    """Read-only view of a run folder written by :func:`slimrec.pipeline.run_pipeline`."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        file = self.run_dir / STAGES_FILE
        if not file.is_file():
            raise ConfigError(
                f"not a slimrec run folder (no {STAGES_FILE})",
                where=self.run_dir,
                fix="give the --out folder of `slimrec run`",
            )
        try:
            stages = json.loads(file.read_text(encoding="utf-8"))["stages"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ConfigError(f"unreadable {STAGES_FILE} ({e})", where=file) from e
        self._stages: dict[str, dict[str, Any]] = {s["name"]: s for s in stages}

    # -- generic --------------------------------------------------------------------

    def stage(self, name: str) -> tuple[Path, dict[str, Any]]:
        """``(folder, outputs)`` of finished stage ``name``."""
        record = self._stages.get(name)
        if record is None:
            raise ConfigError(
                f"the run has no stage {name!r} (stages: {sorted(self._stages)})",
                where=self.run_dir,
                fix="run `slimrec run` with a config that includes it",
            )
        folder = self.run_dir / record["folder"]
        if not (folder / MANIFEST).is_file():
            raise ConfigError(
                f"stage {name!r} did not finish", where=folder, fix="run `slimrec run` again"
            )
        return folder, record.get("outputs", {})

    def has(self, name: str) -> bool:
        return name in self._stages

    def stage_key(self, name: str) -> str:
        """The key of stage ``name`` (what later stages name as their input)."""
        self.stage(name)  # one line if missing or unfinished
        return self._stages[name]["key"]

    def stages(self) -> dict[str, dict[str, Any]]:
        """Every stage of the latest invocation, by name, as ``stages.json`` lists it."""
        return dict(self._stages)

    def output(self, name: str, key: str) -> Path:
        """The path of output ``key`` of stage ``name``."""
        folder, outputs = self.stage(name)
        if key not in outputs:
            raise ConfigError(f"stage {name!r} has no output {key!r}", where=folder)
        return folder / outputs[key]

    # -- named artifacts ------------------------------------------------------------

    @cached_property
    def config(self) -> RunConfig:
        """The run's config as saved in ``config.yaml``."""
        from slimrec.config import load_yaml

        return load_yaml(RunConfig, self.run_dir / "config.yaml")

    @property
    def data_dir(self) -> Path:
        """The prepared dataset the run trained on."""
        return self.output("prepare", "data")

    def rationales(self, source: str) -> Path | None:
        """``rationales.parquet`` of ``teacher`` or ``student`` (None when not produced)."""
        stages = {"teacher": ["teach"], "student": ["reason", "reuse/student"]}.get(source)
        if stages is None:
            raise ConfigError(f"unknown rationale source {source!r}", fix="teacher or student")
        found = [stage for stage in stages if self.has(stage)]
        return self.output(found[0], "rationales") if found else None

    @property
    def adapter(self) -> Path | None:
        """The distilled student's LoRA adapter (None for runs without a student)."""
        return self.output("distill", "adapter") if self.has("distill") else None

    def fits(self) -> list[Fit]:
        """Every trained model of the run, in run order."""
        return [
            Fit.of(StageRecord(**stage), self.output(name, "run"))
            for name, stage in self._stages.items()
            if name.startswith("fit/")
        ]

    def fit(self, method: str, backbone: str | None = None, seed: int = 0) -> Fit:
        """The model of ``method`` and ``seed`` on ``backbone`` (None: the first trained).

        ID-agnostic methods have no backbone: any ``backbone`` finds them.
        """
        fits = self.fits()
        for f in fits:
            if (
                f.method == method
                and f.seed == seed
                and (f.backbone in (None, backbone) or not backbone)
            ):
                return f
        known = ", ".join(f"{f.backbone or '-'}/{f.method}/seed{f.seed}" for f in fits)
        asked = f"{backbone}/{method}/seed{seed}" if backbone else f"{method}/seed{seed}"
        raise ConfigError(
            f"the run has no model {asked}",
            where=self.run_dir,
            fix=f"choose one of: {known or 'none (no fit stage finished)'}",
        )


def recorded_fits(run_dir: str | Path) -> list[Fit]:
    """Every finished fit in ``run_dir/stages``, whichever invocation of the run made it
    (``stages.json`` lists only the latest's): a long run gathers fits over sessions and
    configs (bench/runs/README.md). Their weights may be absent; their records are not."""
    run_dir = Path(run_dir)
    found = []
    for file in sorted(run_dir.glob(f"stages/fit-*/{MANIFEST}")):
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"unreadable stage manifest ({e})", where=file) from e
        record = StageRecord(
            name=manifest["name"],
            key=manifest["key"],
            folder=str(file.parent.relative_to(run_dir)),
            status="cached",
            seconds=0.0,
            compute_seconds=manifest["seconds"],
            cost=manifest.get("cost", {}),
            outputs=manifest["outputs"],
            machine=manifest.get("machine"),
        )
        found.append(Fit.of(record, file.parent / manifest["outputs"]["run"]))
    return found
