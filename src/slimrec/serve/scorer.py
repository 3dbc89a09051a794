"""Top-k items from a trained model: for a known user, or for any history and rationale.

Loads a run's ``best.pt`` once (:func:`slimrec.methods.load_model`) and ranks the
catalog with it. A known user is scored exactly as :func:`slimrec.methods.recommend`
does (whole history, the user's own rationale row); a new history with the embedding of
the rationale the student wrote for it (:func:`slimrec.methods.slim.fusion.full_sort_with_text`).
Items of the history (and padding) are never recommended. The item table is computed
once at load. Requests are scored one at a time under a lock: one forward pass of a
small model takes milliseconds, and torch modules are not meant to be shared by
concurrent callers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from slimrec.config import load_yaml
from slimrec.eval import pad_right
from slimrec.methods.load import load_model
from slimrec.methods.slim.fusion.scoring import full_sort_with_text, user_text_dim, uses_user_text
from slimrec.training import TrainConfig


@dataclass(frozen=True)
class Ranked:
    """Item ids and scores, best first (only real items: never padding or history)."""

    items: list[int]
    scores: list[float]


class Scorer:
    """One trained model of a run, ready to rank the catalog."""

    def __init__(self, fit_dir: str | Path, *, device: str = "cpu"):
        self.fit_dir = Path(fit_dir)
        self.device = device
        self.model = load_model(self.fit_dir, device=device)
        self.max_len = load_yaml(TrainConfig, self.fit_dir / "config.yaml").max_len
        self.n_items = int(self.model.n_items)
        self.reads_text = uses_user_text(self.model)
        self.text_dim = user_text_dim(self.model)
        self._lock = threading.Lock()
        # The model is frozen: its item table (for "+" and SLIM models a pass of the
        # fusion network over the whole catalog) is computed once, not per request.
        with torch.inference_mode():
            self.items = self.model.item_encoder()

    def for_user(self, user: int, history: Sequence[int], k: int) -> Ranked:
        """Top ``k`` for known user index ``user`` whose whole history is ``history``."""
        users = torch.tensor([user], device=self.device)
        with self._lock, torch.inference_mode():
            seqs, lengths = self._batch(history)
            user_vector = self.model.user_vectors(seqs, lengths, users, self.items)
            return self._top((user_vector @ self.items.T)[0], history, k)

    def for_history(self, history: Sequence[int], k: int, text: np.ndarray | None) -> Ranked:
        """Top ``k`` for ``history`` and its rationale embedding ``text`` ``[d]``."""
        vec = None if text is None else torch.as_tensor(np.asarray(text, np.float32))[None]
        with self._lock, torch.inference_mode():
            seqs, lengths = self._batch(history)
            scores = full_sort_with_text(self.model, seqs, lengths, vec, self.items)
            return self._top(scores[0], history, k)

    def _batch(self, history: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        seqs = pad_right([np.asarray(history, dtype=np.int64)], self.max_len).to(self.device)
        lengths = (seqs > 0).sum(1).clamp(min=1)
        return seqs, lengths

    def _top(self, scores: torch.Tensor, history: Sequence[int], k: int) -> Ranked:
        scores = scores.float().clone()
        scores[0] = float("-inf")
        if len(history):
            scores[torch.as_tensor(list(history), dtype=torch.long)] = float("-inf")
        top = scores.topk(min(k, self.n_items))
        keep = ~torch.isinf(top.values)
        return Ranked(top.indices[keep].tolist(), top.values[keep].tolist())
