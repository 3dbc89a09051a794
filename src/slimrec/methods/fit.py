"""Train any registered method on a prepared dataset: ``fit_method("slim", data, ...)``.

The method decides the model and how it trains (most through the shared, seeded,
early-stopped, resumable :class:`~slimrec.training.Trainer`, reused when finished); this
function only looks it up and hands it its inputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from slimrec.data.prepared import PreparedDataset
from slimrec.methods.base import FitContext, get_method
from slimrec.training import TrainConfig


def fit_method(
    method: str,
    data: PreparedDataset,
    train: TrainConfig,
    out: Path,
    *,
    item_text: np.ndarray | None = None,
    user_text: np.ndarray | None = None,
    teacher: Path | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``method`` (its config updated by ``options``) into run folder ``out``; the
    trainer's results plus ``"method"``.

    ``item_text`` ``[n_items + 1, d]`` (row 0 padding) and ``user_text`` ``[n_users, d]``
    are required when the method uses them and ignored otherwise, so a caller may pass
    the same tables to every method; ``teacher`` is the trained run a method learns
    from (LLM-SRec: a ``backbone`` run on the same data). A control method (``slim-zero-text``,
    ``slim-shuffled-text``) replaces ``user_text``, seeded by the training seed.
    """
    chosen = get_method(method, **(options or {}))
    needs = chosen.needs()
    context = FitContext(
        data,
        train,
        item_text=item_text if needs.item_text else None,
        user_text=user_text if needs.user_text else None,
        teacher=Path(teacher) if teacher and needs.teacher else None,
    )
    return chosen.fit(context, Path(out))
