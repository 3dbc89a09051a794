"""Score the catalog for a history and a rationale embedding that no table row holds.

A trained SLIM model keeps a frozen table of its users' rationale embeddings, so its
scoring methods take user *indices*. A new history (a visitor, an edited basket) has no
row: the student writes a rationale for it, the encoder embeds it, and this module scores
with that vector in place of a row -- the same fusion the user's row would go through:

* ID-based SLIM (``user_fusion`` set): ``s_u = g_f([g_l(text); s_seq])``;
* ID-agnostic text matching: ``s_u = g_t(text)`` (the history itself is not read);
* models without user text (``backbone``, ``backbone+``): the history alone; ``text`` is
  ignored (it is optional there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from slimrec.backbones.base import SequentialRecommender
from slimrec.methods.slim.fusion.matching import TextMatching


def uses_user_text(model: SequentialRecommender) -> bool:
    """Whether the model's scores depend on a user's rationale embedding."""
    return model.reads_user_text


def user_text_dim(model: SequentialRecommender) -> int | None:
    """Width of the rationale embeddings the model reads (None: it reads none)."""
    if isinstance(model, TextMatching):
        return int(model.user_text.shape[1])
    if model.user_fusion is not None:
        return int(model.user_fusion.user_text.shape[1])
    return None


@torch.inference_mode()
def full_sort_with_text(
    model: SequentialRecommender,
    seqs: Tensor,
    lengths: Tensor,
    text: Tensor | None,
    item_table: Tensor | None = None,
) -> Tensor:
    """Scores of every item ``[B, n_items + 1]`` (column 0 ``-inf``) for given rationales.

    ``seqs`` ``[B, L]`` right-padded histories, ``lengths`` ``[B]``, ``text`` ``[B, d]``
    rationale embeddings (required when :func:`uses_user_text`, else ignored);
    ``item_table``: the model's item table when the caller keeps it (a frozen model's
    table never changes), else it is computed.
    """
    table = model.item_encoder() if item_table is None else item_table
    if uses_user_text(model):
        if text is None:
            raise ValueError("this model reads a rationale embedding: pass text=...")
        text = text.to(table)
        if isinstance(model, TextMatching):
            user = model.item_encoder.g_t(text)
        else:
            s_seq = model.encode(seqs, lengths, table)
            user = model.user_fusion.fuse_text(s_seq, text)  # type: ignore[union-attr]
    else:
        user = model.user_vectors(seqs, lengths, None, table)
    scores = user @ table.T
    scores[:, 0] = float("-inf")
    return scores
