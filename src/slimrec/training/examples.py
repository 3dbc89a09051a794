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

``fuse`` marks the pairs whose target a user's rationale has not seen
(:func:`slimrec.data.prepared.rationale_cutoff`): with ``hold_out = 0`` every pair (the
rationale read the whole training part, targets included, as in the SLIM paper); with
``hold_out = k`` only targets among the last ``k`` training items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from slimrec.data.prepared import rationale_cutoff


@dataclass
class Examples:
    """Right-padded inputs ``[M, L]``, their lengths ``[M]`` and targets.

    ``targets`` is ``[M]`` for prefix rows and ``[M, L]`` (0 = no target) for causal rows;
    ``fuse`` (bool, the shape of ``targets``) marks targets the rationale has not seen.
    """

    seqs: Tensor
    lengths: Tensor
    targets: Tensor
    users: Tensor
    fuse: Tensor

    def __len__(self) -> int:
        return self.seqs.shape[0]

    @property
    def n_pairs(self) -> int:
        return int((self.targets > 0).sum())

    def batch(self, index: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Rows ``index`` (seqs, lengths, targets, users, fuse), trimmed to the longest
        row so padding costs nothing."""
        lengths = self.lengths[index]
        width = int(lengths.max())
        targets, fuse = self.targets[index], self.fuse[index]
        if targets.dim() == 2:
            targets, fuse = targets[:, :width], fuse[:, :width]
        return self.seqs[index, :width], lengths, targets, self.users[index], fuse

    def only_fused(self) -> Examples:
        """The rows whose target the rationale has not seen (prefix rows only)."""
        if self.targets.dim() != 1:
            raise ValueError("only prefix examples can be filtered by row")
        keep = self.fuse
        return Examples(
            self.seqs[keep], self.lengths[keep], self.targets[keep], self.users[keep], keep[keep]
        )

    def last_per_user(self) -> Examples:
        """Each user's last row only (prefix rows: the pair predicting the user's last
        training item)."""
        if self.targets.dim() != 1:
            raise ValueError("only prefix examples have one pair per row")
        users = self.users.numpy()
        keep = torch.from_numpy(np.r_[users[1:] != users[:-1], True]) if len(users) else self.fuse
        return Examples(
            self.seqs[keep],
            self.lengths[keep],
            self.targets[keep],
            self.users[keep],
            self.fuse[keep],
        )


def prefix_examples(histories: list[np.ndarray], max_len: int, hold_out: int = 0) -> Examples:
    """One row per (history, next item) pair inside each training sequence."""
    rows, lengths, targets, users, fuse = [], [], [], [], []
    for user, seq in enumerate(histories):
        cutoff = rationale_cutoff(len(seq), hold_out)
        for t in range(1, len(seq)):
            hist = seq[max(0, t - max_len) : t]
            rows.append(hist)
            lengths.append(len(hist))
            targets.append(seq[t])
            users.append(user)
            fuse.append(hold_out == 0 or t >= cutoff)
    return Examples(
        seqs=_pad(rows, max_len),
        lengths=torch.tensor(lengths, dtype=torch.long),
        targets=torch.tensor(targets, dtype=torch.long),
        users=torch.tensor(users, dtype=torch.long),
        fuse=torch.tensor(fuse, dtype=torch.bool),
    )


def causal_examples(histories: list[np.ndarray], max_len: int, hold_out: int = 0) -> Examples:
    """Windows of inputs ``s[:-1]`` with targets ``s[1:]``, cut from the newest end."""
    inputs, outputs, users, fuse = [], [], [], []
    for user, seq in enumerate(histories):
        x, y = seq[:-1], seq[1:]
        cutoff = rationale_cutoff(len(seq), hold_out)
        for end in range(len(x), 0, -max_len):
            start = max(0, end - max_len)
            inputs.append(x[start:end])
            outputs.append(y[start:end])
            users.append(user)
            # y[j] is the training item at index j + 1.
            fuse.append(np.arange(start + 1, end + 1) >= (cutoff if hold_out else 0))
    return Examples(
        seqs=_pad(inputs, max_len),
        lengths=torch.tensor([len(r) for r in inputs], dtype=torch.long),
        targets=_pad(outputs, max_len),
        users=torch.tensor(users, dtype=torch.long),
        fuse=_pad(fuse, max_len).bool(),
    )


def _pad(rows: list[np.ndarray], width: int) -> Tensor:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)
