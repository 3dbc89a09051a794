"""Results over seeds: mean ± std per (dataset, protocol, method, metric), as tables.

A single run is noise; the SLIM paper and our reports give the mean and the sample
standard deviation (``ddof=1``) over seeds. With one run the std is undefined: it is
stored as ``None`` and the table shows the mean alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slimrec.io import write_json_atomic

DEFAULT_TABLE_METRICS = ("ndcg@10", "hit@10", "hit@20")


@dataclass(frozen=True)
class RunResult:
    """The test metrics of one trained model, one seed, one protocol."""

    method: str
    seed: int
    metrics: dict[str, float]
    protocol: str = "full"
    dataset: str = ""


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float | None  # None with a single run
    n: int

    def format(self, digits: int = 4) -> str:
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"


@dataclass
class ResultTable:
    """A collection of runs that summarises and renders itself."""

    runs: list[RunResult] = field(default_factory=list)

    def add(self, run: RunResult) -> None:
        self.runs.append(run)

    def methods(self, dataset: str | None = None, protocol: str | None = None) -> list[str]:
        """Methods in the order they were first added."""
        seen: dict[str, None] = {}
        for r in self._select(dataset, protocol):
            seen.setdefault(r.method, None)
        return list(seen)

    def summary(
        self, method: str, metric: str, *, dataset: str | None = None, protocol: str = "full"
    ) -> Summary:
        values = [r.metrics[metric] for r in self._select(dataset, protocol) if r.method == method]
        if not values:
            raise KeyError(f"no runs of {method!r} with {metric!r} ({protocol})")
        mean = sum(values) / len(values)
        if len(values) < 2:
            return Summary(mean, None, 1)
        var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
        return Summary(mean, math.sqrt(var), len(values))

    def improvement(
        self, method: str, baseline: str, metric: str, *, dataset=None, protocol="full"
    ) -> float:
        """Relative improvement of ``method`` over ``baseline`` in percent (the paper's row)."""
        a = self.summary(method, metric, dataset=dataset, protocol=protocol).mean
        b = self.summary(baseline, metric, dataset=dataset, protocol=protocol).mean
        return 100.0 * (a - b) / b if b else math.nan

    def to_markdown(
        self,
        metrics: tuple[str, ...] = DEFAULT_TABLE_METRICS,
        *,
        dataset: str | None = None,
        protocol: str = "full",
        methods: list[str] | None = None,
        improvement_over: tuple[str, str] | None = None,
    ) -> str:
        """Methods as rows, metrics as columns, cells ``mean ± std``; best mean in bold.

        ``improvement_over=(method, baseline)`` adds the paper's "Improv." row.
        """
        methods = methods or self.methods(dataset, protocol)
        cells = {
            m: {k: self.summary(m, k, dataset=dataset, protocol=protocol) for k in metrics}
            for m in methods
        }
        best = {k: max(cells[m][k].mean for m in methods) for k in metrics}
        n = max(s.n for row in cells.values() for s in row.values())
        lines = [
            f"| method (n={n}) | " + " | ".join(metrics) + " |",
            "|---|" + "---:|" * len(metrics),
        ]
        for m in methods:
            shown = [
                f"**{cells[m][k].format()}**"
                if cells[m][k].mean == best[k] and len(methods) > 1
                else cells[m][k].format()
                for k in metrics
            ]
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
        return {"runs": [asdict(r) for r in self.runs]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ResultTable:
        return cls([RunResult(**r) for r in data["runs"]])

    def save(self, path: str | Path) -> None:
        write_json_atomic(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> ResultTable:
        return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))

    def _select(self, dataset: str | None, protocol: str | None) -> list[RunResult]:
        return [
            r
            for r in self.runs
            if (dataset is None or r.dataset == dataset)
            and (protocol is None or r.protocol == protocol)
        ]
