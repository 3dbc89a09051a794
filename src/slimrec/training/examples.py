"""Training examples from the training part of every sequence.

Both layouts cover exactly the same (history -> next item) pairs -- every position
``t >= 1`` of ``s[:-2]`` predicted from the items before it, as RecBole's prefix
augmentation does -- so an "epoch" means the same thing in both:

* ``prefix``: one row per pair, the history cut to its most recent ``max_len`` items.
  Any backbone can train this way.
* ``causal``: one row per window of ``max_len`` positions, the loss taken at every
  position at once (SASRec's original objective). A causal backbone (SASRec, GRU4Rec)
  computes all of a window's pairs in one forward pass instead of ``max_len`` passes,
  which is where most of our speed over prefix training comes from. Pairs at the start
  of a later window see fewer than ``max_len`` earlier items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Examples:
    """Right-padded inputs ``[M, L]``, their lengths ``[M]`` and targets.

    ``targets`` is ``[M]`` for prefix rows and ``[M, L]`` (0 = no target) for causal rows.
    """

    seqs: Tensor
    lengths: Tensor
    targets: Tensor
    users: Tensor

    def __len__(self) -> int:
        return self.seqs.shape[0]

    @property
    def n_pairs(self) -> int:
        return int((self.targets > 0).sum())

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Rows ``index``, trimmed to the longest row so padding costs nothing."""
        lengths = self.lengths[index]
        width = int(lengths.max())
        targets = self.targets[index]
        if targets.dim() == 2:
            targets = targets[:, :width]
        return self.seqs[index, :width], lengths, targets, self.users[index]


def prefix_examples(histories: list[np.ndarray], max_len: int) -> Examples:
    """One row per (history, next item) pair inside each training sequence."""
    rows, lengths, targets, users = [], [], [], []
    for user, seq in enumerate(histories):
        for t in range(1, len(seq)):
            hist = seq[max(0, t - max_len) : t]
            rows.append(hist)
            lengths.append(len(hist))
            targets.append(seq[t])
            users.append(user)
    return Examples(
        seqs=_pad(rows, max_len),
        lengths=torch.tensor(lengths, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        users=torch.tensor(users, dtype=torch.long),
    )


def causal_examples(histories: list[np.ndarray], max_len: int) -> Examples:
    """Windows of inputs ``s[:-1]`` with targets ``s[1:]``, cut from the newest end."""
    inputs, outputs, users = [], [], []
    for user, seq in enumerate(histories):
        x, y = seq[:-1], seq[1:]
        for end in range(len(x), 0, -max_len):
            start = max(0, end - max_len)
            inputs.append(x[start:end])
            outputs.append(y[start:end])
            users.append(user)
    return Examples(
        seqs=_pad(inputs, max_len),
        lengths=torch.tensor([len(r) for r in inputs], dtype=torch.long),
        targets=_pad(outputs, max_len),
        users=torch.tensor(users, dtype=torch.long),
    )


def _pad(rows: list[np.ndarray], width: int) -> Tensor:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)
