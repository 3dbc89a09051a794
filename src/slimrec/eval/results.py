"""Results over seeds: mean ± std per (dataset, protocol, method, metric), as tables.

A single run is noise: the SLIM paper (Wang et al., WWW 2024) reports averages, and we
report the mean and the sample standard deviation (``ddof=1``) over seeds. With a single
run the std is undefined: it is stored as ``None`` (JSON ``null``) and the table shows
the mean alone, "±" only when ``n >= 2``. ``improvement`` is the paper's "Improv." row:
the relative gain of one method over another, in percent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimrec.errors import ConfigError, DataError
from slimrec.io import write_json_atomic

DEFAULT_TABLE_METRICS = ("ndcg@10", "hit@10", "hit@20")
Key = tuple[str, str, str, str]  # (dataset, protocol, method, metric)


@dataclass(frozen=True)
class RunResult:
    """The test metrics of one trained model: one method, seed, protocol and dataset."""

    method: str
    seed: int
    metrics: dict[str, float]
    protocol: str = "full"
    dataset: str = ""


@dataclass(frozen=True)
class Summary:
    """Mean, sample std (``ddof=1``; ``None`` when ``n == 1``) and number of runs."""

    mean: float
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        n = len(values)
        mean = sum(values) / n
        if n < 2:
            return cls(mean, None, n)
        return cls(mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)), n)

    def format(self, digits: int = 4) -> str:
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class ResultTable:
    """A collection of runs that summarises and renders itself."""

    runs: list[RunResult] = field(default_factory=list)

    def add(self, run: RunResult | None = None, /, **fields: Any) -> RunResult:
        """Add ``run``, or a run built from ``method=, seed=, metrics=, protocol=, dataset=``.

        The same (dataset, protocol, method, seed) twice is a ``ValueError``: it would
        silently count one seed twice.
        """
        run = run if run is not None else RunResult(**fields)
        ident = (run.dataset, run.protocol, run.method, run.seed)
        if any((r.dataset, r.protocol, r.method, r.seed) == ident for r in self.runs):
            raise ValueError(f"run already in the table: dataset, protocol, method, seed {ident}")
        self.runs.append(run)
        return run

    def summary(self) -> dict[Key, Summary]:
        """``{(dataset, protocol, method, metric): Summary}`` over the seeds of every group."""
        values: dict[Key, list[float]] = {}
        for r in self.runs:
            for metric, v in r.metrics.items():
                values.setdefault((r.dataset, r.protocol, r.method, metric), []).append(v)
        return {key: Summary.of(v) for key, v in values.items()}

    def cell(
        self, method: str, metric: str, *, dataset: str | None = None, protocol: str = "full"
    ) -> Summary:
        """The summary of one method and metric; ``dataset=None`` if the table has one."""
        dataset = self._dataset(dataset)
        key = (dataset, protocol, method, metric)
        values = [r.metrics[metric] for r in self.runs if _key(r, metric) == key]
        if not values:
            raise KeyError(f"no runs of {method!r} with {metric!r} ({dataset!r}, {protocol})")
        return Summary.of(values)

    def methods(self, dataset: str | None = None, protocol: str = "full") -> list[str]:
        """Methods with runs on ``dataset`` under ``protocol``, in the order first added."""
        dataset = self._dataset(dataset)
        seen = (r.method for r in self.runs if (r.dataset, r.protocol) == (dataset, protocol))
        return list(dict.fromkeys(seen))

    def improvement(
        self,
        a: str,
        b: str,
        metric: str,
        *,
        dataset: str | None = None,
        protocol: str = "full",
    ) -> float:
        """Relative improvement of method ``a``'s mean over method ``b``'s, in percent."""
        mean_a = self.cell(a, metric, dataset=dataset, protocol=protocol).mean
        mean_b = self.cell(b, metric, dataset=dataset, protocol=protocol).mean
        return 100.0 * (mean_a - mean_b) / mean_b if mean_b else math.nan

    def to_markdown(
        self,
        metrics: Sequence[str] = DEFAULT_TABLE_METRICS,
        *,
        dataset: str | None = None,
        protocol: str = "full",
        methods: Sequence[str] | None = None,
        improvement_over: tuple[str, str] | None = None,
        digits: int = 4,
    ) -> str:
        """Methods as rows, metrics as columns, cells ``mean ± std``; best mean in bold.

        ``improvement_over=(a, b)`` adds the paper's "Improv." row (a over b, in %).
        Cells without runs show "–"; a cell's run count is shown when it differs from n.
        """
        dataset = self._dataset(dataset)
        methods = list(methods or self.methods(dataset, protocol))
        groups = self.summary()
        cells = {m: {k: groups.get((dataset, protocol, m, k)) for k in metrics} for m in methods}
        present = [s for row in cells.values() for s in row.values() if s is not None]
        if not present:
            raise KeyError(f"no runs for dataset {dataset!r}, protocol {protocol!r}")
        n = max(s.n for s in present)
        best = {
            k: max((row[k].mean for row in cells.values() if row[k]), default=None) for k in metrics
        }
        title = f"{dataset}, {protocol}" if dataset else protocol
        lines = [
            f"| method ({title}, n={n}) | " + " | ".join(metrics) + " |",
            "|---|" + "---:|" * len(metrics),
        ]
        for m in methods:
            shown = []
            for k in metrics:
                s = cells[m][k]
                text = "–" if s is None else s.format(digits)
                if s is not None and s.n != n:
                    text += f" (n={s.n})"
                if s is not None and len(methods) > 1 and s.mean == best[k]:
                    text = f"**{text}**"
                shown.append(text)
            lines.append(f"| {m} | " + " | ".join(shown) + " |")
        if improvement_over:
            a, b = improvement_over
            row = [
                f"{self.improvement(a, b, k, dataset=dataset, protocol=protocol):+.2f}%"
                for k in metrics
            ]
            lines.append(f"| Improv. ({a} vs {b}) | " + " | ".join(row) + " |")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, Any]:
        """The runs (the source of truth) and, for readers, their summary."""
        summary = [
            dict(zip(("dataset", "protocol", "method", "metric"), key, strict=True)) | asdict(s)
            for key, s in self.summary().items()
        ]
        return {"runs": [asdict(r) for r in self.runs], "summary": summary}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultTable:
        table = cls()
        try:
            for r in data["runs"]:
                table.add(RunResult(**r))
        except (KeyError, TypeError) as e:
            raise DataError(f"not a results file ({type(e).__name__}: {e})") from e
        return table

    def save(self, path: str | Path) -> None:
        """Write the JSON atomically: a reader sees the old file or the new one."""
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> ResultTable:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise DataError(f"cannot read results ({e})", where=path) from e
        return cls.from_json(data)

    def _dataset(self, dataset: str | None) -> str:
        """``dataset``, or the table's only dataset; ``ConfigError`` if that is ambiguous."""
        if dataset is not None:
            return dataset
        names = sorted({r.dataset for r in self.runs})
        if len(names) > 1:
            raise ConfigError(f"the results cover several datasets {names}", fix="pass dataset=...")
        return names[0] if names else ""


def _key(run: RunResult, metric: str) -> Key | None:
    return (run.dataset, run.protocol, run.method, metric) if metric in run.metrics else None
