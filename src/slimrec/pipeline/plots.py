"""The long-tail view: how each method's recommendations spread over item popularity.

SLIM claims its rationales help recommend less popular items. Items are split by their
training popularity into ``n_groups`` groups of equal item count, from the head (most
interacted-with) to the tail, and for each method we count the share of its top-K
recommendations that fall in each group; the test targets give the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from slimrec.io import atomic_path


def popularity_groups(popularity: np.ndarray, n_groups: int) -> np.ndarray:
    """Group of every item id (``-1`` for padding id 0): 0 = head ... ``n_groups-1`` = tail.

    ``popularity`` is indexed by item id with index 0 the padding. Groups hold equal
    numbers of items; ties keep item-id order, so the split is deterministic.
    """
    counts = np.asarray(popularity)[1:]
    n_items = len(counts)
    if n_items < n_groups:
        raise ValueError(f"{n_items} items cannot fill {n_groups} popularity groups")
    order = np.argsort(-counts, kind="stable")
    groups = np.empty(n_items + 1, dtype=np.int64)
    groups[0] = -1
    groups[order + 1] = np.arange(n_items) * n_groups // n_items
    return groups


def group_labels(n_groups: int) -> list[str]:
    share = 100 / n_groups
    labels = [f"{i * share:.0f}-{(i + 1) * share:.0f}%" for i in range(n_groups)]
    labels[0] += "\n(head)"
    labels[-1] += "\n(tail)"
    return labels


def group_shares(items: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Share of the (non-padding) item ids in ``items`` falling in each group; sums to 1."""
    ids = np.asarray(items).ravel()
    ids = ids[ids > 0]
    if len(ids) == 0:
        return np.zeros(n_groups)
    counts = np.bincount(groups[ids], minlength=n_groups).astype(np.float64)
    return counts / counts.sum()


def plot_popularity(
    shares: Mapping[str, Mapping[str, np.ndarray]],
    path: str | Path,
    *,
    top_k: int,
    title: str = "",
) -> Path:
    """One panel per backbone (``shares[panel][method]``), grouped bars per popularity group.

    Written atomically as a PNG with matplotlib's Agg backend (no display needed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(shares)
    n_groups = len(next(iter(next(iter(shares.values())).values())))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels), 4.0), squeeze=False, sharey=True
    )
    x = np.arange(n_groups)
    for ax, panel in zip(axes[0], panels, strict=True):
        series = shares[panel]
        width = 0.8 / max(len(series), 1)
        for j, (method, values) in enumerate(series.items()):
            hatch = "//" if method == "test targets" else None
            ax.bar(
                x + (j - (len(series) - 1) / 2) * width, values, width, label=method, hatch=hatch
            )
        ax.set_xticks(x, group_labels(n_groups), fontsize=8)
        ax.set_xlabel("items by training popularity")
        ax.set_title(panel)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"share of top-{top_k} recommendations")
    axes[0][-1].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return path
