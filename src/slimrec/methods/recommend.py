"""Top-k recommendations for given users from a finished (or interrupted) run folder.

Serving and the analyses (e.g. the popularity of what each method recommends) need the
ranked lists themselves, not only metrics. The run's ``best.pt`` is self-contained: text
models keep their frozen item and user text tables in the state dict, so only the run
folder and the prepared dataset (for the histories) are needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from slimrec.config import load_yaml
from slimrec.data.prepared import PreparedDataset
from slimrec.errors import ConfigError
from slimrec.eval import pad_right
from slimrec.methods.load import load_model
from slimrec.training import TrainConfig

History = Literal["all", "test", "valid"]
_CUT = {"all": 0, "test": 1, "valid": 2}


@torch.inference_mode()
def recommend(
    run: str | Path,
    data: PreparedDataset,
    users: Sequence[int] | np.ndarray,
    k: int = 10,
    *,
    history: History = "all",
    mask_history: bool = True,
    device: str = "cpu",
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """``(items [n, k] int64, scores [n, k] float32)``, best first, for ``users``.

    ``history`` is what the model reads: ``"all"`` the whole sequence (serving: what comes
    next), ``"test"`` ``s[:-1]`` or ``"valid"`` ``s[:-2]`` (what those splits score from).
    Items of that history are never recommended when ``mask_history``; where fewer than
    ``k`` items remain, the rest of the row is item 0 with score ``-inf``.
    """
    run = Path(run)
    model = load_model(run, device=device)
    max_len = load_yaml(TrainConfig, run / "config.yaml").max_len
    if model.n_items != data.n_items:
        raise ConfigError(
            f"the run has {model.n_items} items but the dataset {data.n_items}",
            where=run,
            fix="pass the prepared dataset the run was trained on",
        )
    if history not in _CUT:
        raise ConfigError(f"history must be one of {sorted(_CUT)}, got {history!r}")
    if not 1 <= k <= data.n_items:
        raise ConfigError(f"k must lie in 1..{data.n_items}, got {k}")
    ids = np.asarray(users, dtype=np.int64).reshape(-1)
    n_users = data.n_users  # and no more than the model's user text table holds
    for part in (model, model.user_fusion):
        n_users = min(n_users, int(getattr(part, "n_users", n_users)))
    if len(ids) and (ids.min() < 0 or ids.max() >= n_users):
        raise ConfigError(f"user indices must lie in 0..{n_users - 1}", where=run)
    cut = _CUT[history]
    out_items = np.zeros((len(ids), k), dtype=np.int64)
    out_scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
    for start in range(0, len(ids), batch_size):
        rows = ids[start : start + batch_size]
        seen = [data.sequences[u][: len(data.sequences[u]) - cut] for u in rows]
        seqs = pad_right(seen, max_len).to(device)
        lengths = (seqs > 0).sum(1).clamp(min=1)
        scores = model.full_sort_predict(seqs, lengths, torch.from_numpy(rows).to(device))
        if mask_history:
            scores.scatter_(1, pad_right(seen).to(device), float("-inf"))
        scores[:, 0] = float("-inf")
        top = scores.float().topk(k, dim=1)
        items = top.indices.masked_fill(torch.isinf(top.values), 0)
        out_items[start : start + len(rows)] = items.cpu().numpy()
        out_scores[start : start + len(rows)] = top.values.cpu().numpy()
    return out_items, out_scores
