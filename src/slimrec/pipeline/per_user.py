"""Two fitted methods compared user by user, from the per-user test metrics of their fits.

Every fit keeps each test user's metrics (``test_per_user.npz``, one value per user in
user-index order). A comparison pairs two methods on the seeds both have, averages each
user's metric over those seeds and bootstraps the relative difference over the users
(:func:`slimrec.eval.bootstrap.paired_bootstrap`): over all test users for the report's
"Improv." cells, over a group of them for its history-length table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slimrec.data import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.eval.bootstrap import Interval, paired_bootstrap
from slimrec.eval.groups import UserGroup, history_groups
from slimrec.pipeline.artifacts import Fit
from slimrec.training.trainer import PER_USER


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b`` over the chosen users: each mean (over the shared ``seeds`` and
    the users), the paired interval, and how many users the fits were scored on."""

    mean_a: float
    mean_b: float
    interval: Interval | None
    seeds: tuple[int, ...]
    n_scored: int


class PerUserMetrics:
    """The per-user test metrics of a run's fits (None where a fit predates those files)."""

    def __init__(self, fits: Sequence[Fit]):
        self.files: dict[str, dict[int, Path]] = {}
        for fit in fits:
            self.files.setdefault(fit.label, {})[fit.seed] = fit.folder / PER_USER
        self.loaded: dict[Path, dict[str, np.ndarray]] = {}

    def _values(self, path: Path, key: str) -> np.ndarray | None:
        if path not in self.loaded:
            self.loaded[path] = dict(np.load(path)) if path.is_file() else {}
        return self.loaded[path].get(key)

    def compare(
        self, a: str, b: str, key: str, users: np.ndarray | None = None
    ) -> Comparison | None:
        """``a`` vs ``b`` on metric ``key`` ("full/ndcg@10") over ``users`` (None: all)."""
        seeds = sorted(set(self.files.get(a, {})) & set(self.files.get(b, {})))
        rows = [self._values(self.files[m][s], key) for m in (a, b) for s in seeds]
        if not seeds or any(r is None for r in rows):
            return None
        if len({len(r) for r in rows}) > 1:  # type: ignore[arg-type]
            raise ConfigError(
                f"{a} and {b} were scored on different test users",
                where=", ".join(str(self.files[m][s]) for m in (a, b) for s in seeds),
                fix="compare fits trained on the same prepared data",
            )
        stacked = np.stack(rows)  # type: ignore[arg-type]
        rows_a, rows_b = stacked[: len(seeds)], stacked[len(seeds) :]
        if users is not None:
            rows_a, rows_b = rows_a[:, users], rows_b[:, users]
        return Comparison(
            float(rows_a.mean()),
            float(rows_b.mean()),
            paired_bootstrap(rows_a, rows_b),
            tuple(seeds),
            stacked.shape[1],
        )


def groups_by_history(data: PreparedDataset, n_groups: int) -> list[UserGroup]:
    """The test users of ``data`` by history length (none for 0 groups)."""
    lengths = np.array([len(history) for history in data.split("test")[0]])
    return history_groups(lengths, n_groups) if n_groups else []
