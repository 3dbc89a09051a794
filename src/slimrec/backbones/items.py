"""Item encoders: what turns an item id into the vector every backbone works with.

A backbone never owns an ``nn.Embedding`` directly; it asks its *item encoder* for the
whole item table ``[n_items + 1, dim]`` once per forward pass and gathers from it. That one
indirection is what lets SLIM's "+" variants (e.g. ``SASRec+``) swap in text-enhanced item
representations without touching the backbone code:

* :class:`IdItemEncoder` -- the classic learned ID embedding.
* :class:`TextFusedItemEncoder` -- SLIM's fusion of frozen embeddings of each item's own
  text (title, brand, categories, description) with the ID embedding (Wang et al., "Can
  Small Language Models be Good Reasoners for Sequential Recommendation?", WWW 2024,
  Sec. 3.3):
  ``z_i = g_f([g_l(z_text_i); z_id_i])`` with ``g_l: d_text -> dim`` and ``g_f: 2 dim -> dim``.

Row 0 of every table is padding and is kept at exactly zero, so a stray padding id
contributes nothing even before the backbones' own masks.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ItemEncoder(nn.Module):
    """Interface: ``forward()`` returns the full item table, ``forward_ids`` gathers rows.

    Every encoder has an ``id_embedding`` (``nn.Embedding(n_items + 1, dim, padding_idx=0)``)
    so a backbone can re-initialise it the way its paper does.
    """

    n_items: int
    dim: int
    id_embedding: nn.Embedding

    def forward(self) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward_ids(self, ids: Tensor) -> Tensor:
        """Vectors of ``ids`` (any shape) -> ``[*ids.shape, dim]``; id 0 gives zeros."""
        return self()[ids]

    def zero_padding_row_(self) -> None:
        """Reset row 0 of the ID table to zero (call after any re-initialisation)."""
        with torch.no_grad():
            self.id_embedding.weight[0].zero_()


class IdItemEncoder(ItemEncoder):
    """Learned ID embeddings; initialised N(0, 0.02) as in SASRec/RecBole."""

    def __init__(self, n_items: int, dim: int):
        super().__init__()
        self.n_items, self.dim = n_items, dim
        self.id_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.id_embedding.weight, std=0.02)
        self.zero_padding_row_()

    def forward(self) -> Tensor:
        return self.id_embedding.weight

    def forward_ids(self, ids: Tensor) -> Tensor:
        # A plain lookup is cheaper than materialising anything: the table *is* the weight.
        return self.id_embedding(ids)


class TextFusedItemEncoder(ItemEncoder):
    """SLIM's "+" item representation: ``z_i = g_f([g_l(z_text_i); z_id_i])``.

    ``text_emb`` (``[n_items + 1, d_text]``) is frozen and stored as a buffer, so it moves
    with ``.to(device)`` and is saved in the ``state_dict`` (a model file is self-contained).
    Dropout is applied to the projected text, the only new input the fusion brings in.
    """

    def __init__(self, n_items: int, dim: int, text_emb: Tensor, dropout: float = 0.0):
        super().__init__()
        if text_emb.dim() != 2 or text_emb.shape[0] != n_items + 1:
            raise ValueError(
                f"text_emb must have shape [n_items + 1, d_text] = [{n_items + 1}, d]; "
                f"got {list(text_emb.shape)}"
            )
        self.n_items, self.dim = n_items, dim
        text = text_emb.detach().float().clone()
        text[0] = 0.0  # padding has no text
        self.register_buffer("text_emb", text)
        self.id_embedding = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.g_l = nn.Linear(text.shape[1], dim)
        self.g_f = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.normal_(self.id_embedding.weight, std=0.02)
        for lin in (self.g_l, self.g_f):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        self.zero_padding_row_()

    def forward(self) -> Tensor:
        # Fuse rows 1.. only and prepend an exact zero row: the biases of g_l/g_f would
        # otherwise give padding a non-zero vector.
        text = self.dropout(self.g_l(self.text_emb[1:]))
        fused = self.g_f(torch.cat([text, self.id_embedding.weight[1:]], dim=-1))
        return torch.cat([fused.new_zeros(1, self.dim), fused], dim=0)
