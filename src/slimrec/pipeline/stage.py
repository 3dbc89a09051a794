"""Cached, resumable stages: each keyed by the hash of its inputs, finished by a manifest.

A stage's artifacts live in ``<run>/stages/<name>-<key>/`` where ``key`` hashes the
stage's name, its own config section and the keys of the stages it reads (so a change
anywhere upstream changes every key below it). ``stage.json`` is written atomically
*after* the stage's work is done: its presence means "finished". A folder without it is
an interrupted stage; running it again continues in the same folder, and the stages
themselves resume there (the trainer's ``last.pt``, distillation's ``last/``, the
teacher's answer cache, the student's shards).

Every stage run appends a record to ``<run>/stages.json`` (rewritten atomically after
each stage, so an interrupted run still shows where it got to): status ``cached`` or
``ran``, this run's seconds, the seconds the stage took when it was computed (over all
its attempts, if it was interrupted and resumed: stopwatch.py), and its
costs (teacher tokens and estimated price, student tokens).

Several processes may work in one run folder at once (``slimrec run`` started twice on
one config, one thread each): a stage is computed under an exclusive lock on
``<run>/.locks/<stage folder name>`` (``fcntl.flock``; the OS drops it when its holder
dies, so a killed worker's stage is resumed by the next one), and the others either wait
for it and then reuse it, or move on (``wait=False``) and come back. No locking where
``fcntl`` is absent (Windows): there, one process per run folder.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from slimrec.config import config_hash
from slimrec.io import write_json_atomic
from slimrec.machine import describe
from slimrec.memory import release_memory
from slimrec.pipeline.stopwatch import Stopwatch

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, one process per run folder
    fcntl = None  # type: ignore[assignment]

# Bump when a stage's artifacts change meaning: every key changes, nothing stale is reused.
PIPELINE_VERSION = 1
MANIFEST = "stage.json"
STAGES_FILE = "stages.json"
LOCKS = ".locks"


@dataclass
class StageRecord:
    """One stage of one run: what it was, whether it ran, what it cost."""

    name: str
    key: str
    folder: str
    status: Literal["cached", "ran"]
    seconds: float  # wall time in this run (near 0 when cached)
    compute_seconds: float  # wall time when the artifacts were computed
    cost: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    machine: str | None = None  # where the artifacts were computed (slimrec.machine)

    @property
    def kind(self) -> str:
        """The stage kind: ``fit/sasrec/slim/seed0`` -> ``fit``."""
        return self.name.split("/", 1)[0]


def stage_key(name: str, inputs: dict[str, Any]) -> str:
    return config_hash(PIPELINE_VERSION, name, inputs)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.+_-]+", "-", name).strip("-")


class StageRunner:
    """Runs stages in a run folder, reusing finished ones; keeps ``stages.json`` current."""

    def __init__(self, run_dir: str | Path, *, echo: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.records: list[StageRecord] = []
        self.echo = echo
        self.started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")

    def folder(self, name: str, key: str) -> Path:
        return self.run_dir / "stages" / f"{_slug(name)}-{key}"

    def finished(self, name: str, inputs: dict[str, Any]) -> bool:
        """Whether the stage with these inputs has already finished in this run folder."""
        key = stage_key(name, inputs)
        return _read_manifest(self.folder(name, key) / MANIFEST, key) is not None

    def run(
        self,
        name: str,
        inputs: dict[str, Any],
        work: Callable[[Path], dict[str, Any]],
        *,
        complete: Callable[[Path], bool] | None = None,
    ) -> StageRecord:
        """Run ``work(folder)`` unless the stage with these inputs already finished.

        ``work`` returns its outputs as a JSON-able dict; a ``cost`` entry in it (a dict)
        is reported apart. Its return value is stored in the manifest, so a cached stage
        hands the same outputs downstream. ``complete(folder)``: whether a finished stage
        holds everything this run needs of it; one that does not (a fit's record committed
        without its weights, needed here by a method that loads them) starts again from
        an empty folder. While another process computes this stage, this waits for it and
        then reuses its work.
        """
        record = self._run(name, inputs, work, complete, wait=True)
        assert record is not None  # a waiting run always gets the lock
        return record

    def try_run(
        self,
        name: str,
        inputs: dict[str, Any],
        work: Callable[[Path], dict[str, Any]],
        *,
        complete: Callable[[Path], bool] | None = None,
    ) -> StageRecord | None:
        """:meth:`run`, or ``None`` at once while another process computes this stage."""
        return self._run(name, inputs, work, complete, wait=False)

    def _run(
        self,
        name: str,
        inputs: dict[str, Any],
        work: Callable[[Path], dict[str, Any]],
        complete: Callable[[Path], bool] | None,
        *,
        wait: bool,
    ) -> StageRecord | None:
        key = stage_key(name, inputs)
        folder = self.folder(name, key)
        with self._lock(name, folder, wait) as held:
            if not held:
                return None
            return self._run_locked(name, key, folder, inputs, work, complete)

    @contextmanager
    def _lock(self, name: str, folder: Path, wait: bool) -> Iterator[bool]:
        """Hold the stage's lock (``True``), or ``False`` when busy and not ``wait``."""
        if fcntl is None:
            yield True
            return
        locks = self.run_dir / LOCKS
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / folder.name, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    self.echo(f"[{name}] another process is computing it: back to it later")
                    yield False
                    return
                self.echo(f"[{name}] another process is computing it: waiting for it")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _run_locked(
        self,
        name: str,
        key: str,
        folder: Path,
        inputs: dict[str, Any],
        work: Callable[[Path], dict[str, Any]],
        complete: Callable[[Path], bool] | None,
    ) -> StageRecord:
        manifest = _read_manifest(folder / MANIFEST, key)
        if manifest is not None and complete is not None and not complete(folder):
            self.echo(f"[{name}] finished, but lacks what this run needs (weights?): running again")
            shutil.rmtree(folder)
            manifest = None
        start = time.perf_counter()
        if manifest is None:
            resumed = folder.exists()
            folder.mkdir(parents=True, exist_ok=True)
            self.echo(f"[{name}] {'resuming' if resumed else 'running'} in {folder}")
            with Stopwatch(folder) as watch:
                outputs = work(folder)
            release_memory()  # a distilled student's 14 GB otherwise stay for the next stage
            manifest = {
                "name": name,
                "key": key,
                "pipeline_version": PIPELINE_VERSION,
                "inputs": inputs,
                "seconds": round(watch.seconds, 3),  # every attempt's, if it was resumed
                "attempts": watch.attempts,
                "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "machine": describe(),
                "cost": outputs.pop("cost", {}),
                "outputs": outputs,
            }
            write_json_atomic(folder / MANIFEST, manifest)
            status: Literal["cached", "ran"] = "ran"
        else:
            status = "cached"
        record = StageRecord(
            name=name,
            key=key,
            folder=str(folder.relative_to(self.run_dir)),
            status=status,
            seconds=round(time.perf_counter() - start, 3),
            compute_seconds=manifest["seconds"],
            cost=manifest.get("cost", {}),
            outputs=manifest["outputs"],
            machine=manifest.get("machine"),
        )
        # A stage run again in this run (a fit trained again for its weights) keeps its place.
        same = [i for i, r in enumerate(self.records) if r.name == name]
        if same:
            self.records[same[0]] = record
        else:
            self.records.append(record)
        self.save()
        return record

    def save(self) -> None:
        write_json_atomic(
            self.run_dir / STAGES_FILE,
            {"started": self.started, "stages": [asdict(r) for r in self.records]},
        )

    def table(self) -> str:
        """The stage table printed at the end of a run."""
        width = max([len(r.name) for r in self.records] + [5])
        lines = [f"{'stage':<{width}}  {'status':<6}  {'seconds':>8}  {'computed in':>11}"]
        for r in self.records:
            lines.append(
                f"{r.name:<{width}}  {r.status:<6}  {r.seconds:>8.1f}  {r.compute_seconds:>10.1f}s"
            )
        total = sum(r.seconds for r in self.records)
        lines.append(f"{'total':<{width}}  {'':<6}  {total:>8.1f}")
        return "\n".join(lines)


def _read_manifest(path: Path, key: str) -> dict[str, Any] | None:
    """The manifest of a finished stage, or ``None`` (absent, unreadable or another key)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key or "outputs" not in manifest:
        return None
    return manifest
