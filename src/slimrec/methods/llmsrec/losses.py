"""LLM-SRec's three training objectives (Kim et al., KDD 2025; spec Sec. 2.4).

* next-item retrieval: cross-entropy of the target among its candidates, on the raw
  user and item vectors (dot product, no temperature);
* distillation: MSE between the L2-normalised LLM user vector and the L2-normalised,
  MLP-projected user vector of the frozen sequential teacher (SASRec); on unit vectors
  it equals ``mean(1 - cos) * 2 / dim``;
* uniformity: ``mean_{i<j} exp(-t ||x_i - x_j||^2)`` over a batch of unit vectors (both
  sides of the distillation), which stops the two trainable sides from collapsing onto
  one constant vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def retrieval_ce(users: Tensor, candidates: Tensor) -> Tensor:
    """``users`` ``[B, d]``, ``candidates`` ``[B, C, d]`` with the target in column 0."""
    logits = torch.einsum("bd,bcd->bc", users, candidates)
    return F.cross_entropy(logits, torch.zeros(len(users), dtype=torch.long, device=users.device))


def distill_mse(users: Tensor, teacher: Tensor) -> Tensor:
    """MSE between the unit-length rows of ``users`` and ``teacher`` (both ``[B, d]``)."""
    return F.mse_loss(F.normalize(users, dim=-1), F.normalize(teacher, dim=-1))


def uniformity(x: Tensor, t: float = 2.0) -> Tensor:
    """``mean_{i<j} exp(-t ||x_i - x_j||^2)`` of the unit-length rows of ``x`` (0 for B < 2)."""
    if len(x) < 2:
        return x.sum() * 0.0
    return torch.pdist(F.normalize(x, dim=-1)).pow(2).mul(-t).exp().mean()
