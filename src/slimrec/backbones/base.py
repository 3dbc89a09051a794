"""The one interface every sequential recommender in slimrec implements.

A backbone only defines :meth:`SequentialRecommender.encode` -- "a batch of histories ->
one user vector each" -- given the item table from its item encoder. Everything else
(scoring the catalogue, scoring candidates, the training loss) is shared here, so all
backbones train and evaluate identically (like RecBole's ``calculate_loss`` /
``full_sort_predict`` / ``predict``, minus the interaction-dict plumbing).

Batch conventions (binding for the whole package):

* items are ``1..n_items``; ``0`` is padding;
* ``seqs``: LongTensor ``[B, L]``, RIGHT-padded (real items oldest -> newest, then zeros);
* ``lengths``: LongTensor ``[B]``, each ``>= 1``; positions ``>= lengths`` are ignored
  whatever they contain.

Extension point for SLIM's user-side fusion ``s_u = g_f([g_l(s_text_u); s_seq_u])``: set
``user_fusion`` to a module called as ``user_fusion(s_seq, users, fuse)`` (``users``: the
user indices passed to every scoring method; ``fuse``: None, or in training a bool per row
saying whether that row's text may be used). It is applied in :meth:`user_vectors`, so
scoring and losses pick it up automatically while ``encode`` stays purely sequence-based.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slimrec.backbones.items import ItemEncoder

LOSSES = ("ce", "bce")


@dataclass
class BackboneConfig:
    """Settings shared by all backbones.

    ``loss``: ``"ce"`` (softmax over the whole catalogue) or ``"bce"`` (binary cross-entropy
    against sampled negatives, as the SLIM paper trains). ``n_negatives``: negatives per
    target when the loss samples them itself.
    """

    dim: int = 64
    dropout: float = 0.2
    loss: str = "ce"
    n_negatives: int = 1


def valid_mask(seqs: Tensor, lengths: Tensor) -> Tensor:
    """``[B, L]`` bool, True at real positions (``< lengths``)."""
    return torch.arange(seqs.shape[1], device=seqs.device)[None, :] < lengths[:, None]


def gather_last(x: Tensor, lengths: Tensor) -> Tensor:
    """``x[b, lengths[b] - 1]`` for ``x`` of shape ``[B, L, D]`` -> ``[B, D]``."""
    return x[torch.arange(x.shape[0], device=x.device), lengths - 1]


class SequentialRecommender(nn.Module):
    """Base class: holds the item encoder, the loss setting and the user-fusion hook."""

    # Raised when a default changes what the same config trains; run keys and stage keys
    # include it once above 1, so no cached run of the old model is reused.
    revision: ClassVar[int] = 1
    # False for a model whose user vector ignores the history (text matching): it can
    # learn only from pairs whose target its user text has not seen.
    reads_history: ClassVar[bool] = True
    # False for a model that scores candidates without a user vector (DELRec's LLM reads
    # them in its prompt): diagnostics then skip what needs one.
    has_user_vectors: ClassVar[bool] = True

    def __init__(
        self,
        item_encoder: ItemEncoder,
        loss: str = "ce",
        n_negatives: int = 1,
        user_fusion: nn.Module | None = None,
    ):
        super().__init__()
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.item_encoder = item_encoder
        self.n_items = item_encoder.n_items
        self.dim = item_encoder.dim
        self.loss_type = loss
        self.n_negatives = n_negatives
        self.user_fusion = user_fusion

    def visible_window(self, max_len: int) -> int:
        """How many of a history's most recent items the model reads, given ``max_len``
        (the order diagnostic perturbs only those: it must not change *which* it reads)."""
        return max_len

    @property
    def reads_user_text(self) -> bool:
        """Whether the user vectors depend on a per-user text table (see ``user_fusion``)."""
        return self.user_fusion is not None

    # -- what a subclass defines -------------------------------------------------------------
    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        """Histories -> user vectors ``[B, dim]``, using ``item_table`` ``[n_items + 1, dim]``."""
        raise NotImplementedError

    # -- shared API ---------------------------------------------------------------------------
    def user_vectors(
        self,
        seqs: Tensor,
        lengths: Tensor,
        users: Tensor | None = None,
        item_table: Tensor | None = None,
        fuse: Tensor | None = None,
    ) -> Tensor:
        """User vectors ``[B, dim]`` (after ``user_fusion`` when one is set).

        ``fuse`` (bool ``[B]``, training only): rows whose user text may be fused; None: all.
        """
        table = self.item_encoder() if item_table is None else item_table
        s_seq = self.encode(seqs, lengths, table)
        return s_seq if self.user_fusion is None else self.user_fusion(s_seq, users, fuse)

    def full_sort_predict(
        self, seqs: Tensor, lengths: Tensor, users: Tensor | None = None
    ) -> Tensor:
        """Scores of every item ``[B, n_items + 1]``; column 0 (padding) is ``-inf``."""
        table = self.item_encoder()
        scores = self.user_vectors(seqs, lengths, users, table) @ table.T
        scores[:, 0] = float("-inf")
        return scores

    def predict(
        self, seqs: Tensor, lengths: Tensor, candidates: Tensor, users: Tensor | None = None
    ) -> Tensor:
        """Scores ``[B, C]`` of ``candidates`` ``[B, C]``; padding candidates (0) get ``-inf``."""
        table = self.item_encoder()
        u = self.user_vectors(seqs, lengths, users, table)
        scores = torch.einsum("bd,bcd->bc", u, table[candidates])
        return scores.masked_fill(candidates == 0, float("-inf"))

    def loss(
        self,
        seqs: Tensor,
        lengths: Tensor,
        targets: Tensor,
        negatives: Tensor | None = None,
        users: Tensor | None = None,
        fuse: Tensor | None = None,
    ) -> Tensor:
        """Mean training loss for next items ``targets`` ``[B]`` (values in ``1..n_items``).

        ``"ce"``: cross-entropy over items ``1..n_items`` (padding is not a class).
        ``"bce"``: ``-log s(pos) - mean_n log(1 - s(neg_n))``, averaged over the batch (the
        SASRec/SLIM objective; equal to theirs for one negative). ``negatives`` ``[B, N]``
        are used as given; if None, ``n_negatives`` are drawn uniformly from ``1..n_items``
        with one vectorised call. Collisions with the target are allowed (no rejection
        step): at catalogue sizes in the thousands they are rare and only add noise.
        ``fuse``: see :meth:`user_vectors`.
        """
        table = self.item_encoder()
        u = self.user_vectors(seqs, lengths, users, table, fuse)
        if self.loss_type == "ce":
            return F.cross_entropy(u @ table[1:].T, targets - 1)
        if negatives is None:
            negatives = torch.randint(
                1, self.n_items + 1, (targets.shape[0], self.n_negatives), device=targets.device
            )
        return self._pointwise_loss(u, table, targets, negatives)

    def sequence_loss(
        self,
        seqs: Tensor,
        lengths: Tensor,
        targets: Tensor,
        users: Tensor | None = None,
        fuse: Tensor | None = None,
    ) -> Tensor:
        """Loss at every position at once, for causal backbones (SASRec's own objective).

        ``targets`` ``[B, L]`` holds the next item after each position (0 = none). Only
        backbones defining ``sequence_output`` (causal ones) support it; with a causal
        encoder the output at ``t`` sees items ``<= t`` only, so this equals :meth:`loss`
        over every prefix, computed in one pass.

        With a ``user_fusion``, ``users`` ``[B]`` names the owner of each window (every
        causal window is cut from one user's sequence), whose text is fused into the
        output at each real position -- exactly the pair the prefix layout trains on;
        ``fuse`` ``[B, L]`` bool marks the positions whose target that text has not seen
        (elsewhere it is left out; None: every position). Padding is never fused.
        """
        table = self.item_encoder()
        hidden = self.sequence_output(seqs, lengths, table)  # type: ignore[attr-defined]
        real = targets > 0
        u, y = hidden[real], targets[real]
        if self.user_fusion is not None:
            if users is None:
                raise ValueError("a model with user_fusion needs the owner of each window")
            owners = users[:, None].expand_as(targets)[real]
            u = self.user_fusion(u, owners, None if fuse is None else fuse[real])
        if self.loss_type == "ce":
            return F.cross_entropy(u @ table[1:].T, y - 1)
        negatives = torch.randint(
            1, self.n_items + 1, (y.shape[0], self.n_negatives), device=y.device
        )
        return self._pointwise_loss(u, table, y, negatives)

    @staticmethod
    def _pointwise_loss(u: Tensor, table: Tensor, targets: Tensor, negatives: Tensor) -> Tensor:
        pos = (u * table[targets]).sum(-1)
        neg = torch.einsum("bd,bnd->bn", u, table[negatives])
        return F.softplus(-pos).mean() + F.softplus(neg).mean()
