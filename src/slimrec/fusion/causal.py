"""The causal (every position at once) training loss with SLIM's user-side fusion.

:meth:`SequentialRecommender.sequence_loss` takes the backbone's output at every position
of a window, without users, so it cannot apply ``user_fusion``. Every causal window is
cut from a single user's training sequence (:func:`slimrec.training.examples.causal_examples`),
so fusing that user's text vector into the output at each of its positions is well
defined: position ``t`` then predicts item ``t + 1`` from items ``<= t`` and the user's
rationale, exactly the pair the prefix layout trains on. Only the real positions (those
with a target) are fused, so padding costs nothing and cannot leak; of those, ``fuse``
marks where the rationale has not seen the target (elsewhere the text is left out).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from slimrec.backbones.base import SequentialRecommender


def causal_loss(
    model: SequentialRecommender,
    seqs: Tensor,
    lengths: Tensor,
    targets: Tensor,
    users: Tensor,
    fuse: Tensor | None = None,
) -> Tensor:
    """Mean loss over every real position of causal windows ``seqs`` ``[B, L]``.

    ``targets`` ``[B, L]`` (0 = no target), ``users`` ``[B]`` the owner of each window,
    ``fuse`` ``[B, L]`` bool (None: every position). Without a ``user_fusion`` it is
    exactly the backbone's own ``sequence_loss``.
    """
    if model.user_fusion is None:
        return model.sequence_loss(seqs, lengths, targets)
    table = model.item_encoder()
    hidden = model.sequence_output(seqs, lengths, table)  # type: ignore[attr-defined]
    real = targets > 0
    owners = users[:, None].expand_as(targets)[real]
    active = None if fuse is None else fuse[real]
    u, y = model.user_fusion(hidden[real], owners, active), targets[real]
    # The same two objectives as SequentialRecommender.loss / sequence_loss.
    if model.loss_type == "ce":
        return F.cross_entropy(u @ table[1:].T, y - 1)
    negatives = torch.randint(
        1, model.n_items + 1, (y.shape[0], model.n_negatives), device=y.device
    )
    return model._pointwise_loss(u, table, y, negatives)
