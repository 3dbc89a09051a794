"""ID-agnostic SLIM: recommendation as matching a user's rationale to item texts.

Wang et al., WWW 2024, Sec. 3.3 (ID-agnostic): items and users are represented by their
text alone, ``z_i = g_t(z_text_i)`` and ``s_u = g_t(s_text_u)``, with one network ``g_t``
shared by both sides, and scored by dot product. There are no ID embeddings and no
sequence model, so the model transfers to items and users never seen in training.

It implements the :class:`~slimrec.backbones.base.SequentialRecommender` interface so the
same trainer, losses and evaluation protocol apply: :meth:`TextMatching.user_vectors`
ignores the history and looks up the user's text instead (the rationale was written from
the training part of the history, so it never sees a held-out target).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor, nn

from slimrec.backbones.base import BackboneConfig, SequentialRecommender
from slimrec.backbones.items import ItemEncoder


@dataclass
class TextMatchingConfig(BackboneConfig):
    """``layers``: depth of the shared ``g_t`` (1 = a linear map, 2 = linear-GELU-linear)."""

    layers: int = 2


def shared_mlp(d_in: int, dim: int, layers: int, dropout: float) -> nn.Sequential:
    """``g_t``: ``layers`` linear maps ``d_in -> dim -> ... -> dim`` with GELU and dropout."""
    if layers < 1:
        raise ValueError(f"layers must be at least 1, got {layers}")
    mods: list[nn.Module] = [nn.Linear(d_in, dim)]
    for _ in range(layers - 1):
        mods += [nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)]
    for m in mods:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return nn.Sequential(*mods)


class TextItemEncoder(ItemEncoder):
    """Item table ``g_t(z_text_i)``; row 0 (padding) is exactly zero. No ID embedding."""

    def __init__(self, text_emb: Tensor, g_t: nn.Module, dim: int):
        super().__init__()
        if text_emb.dim() != 2 or text_emb.shape[0] < 2:
            raise ValueError(
                f"text_emb must have shape [n_items + 1, d_text]; got {list(text_emb.shape)}"
            )
        self.n_items, self.dim = int(text_emb.shape[0]) - 1, dim
        text = text_emb.detach().float().clone()
        text[0] = 0.0
        self.register_buffer("text_emb", text)
        self.g_t = g_t

    def forward(self) -> Tensor:
        rows = self.g_t(self.text_emb[1:])
        return torch.cat([rows.new_zeros(1, self.dim), rows], dim=0)

    def zero_padding_row_(self) -> None:
        """Nothing to reset: there is no ID table and row 0 is built as zeros."""


class TextMatching(SequentialRecommender):
    """``score(u, i) = g_t(s_text_u) . g_t(z_text_i)`` with a shared ``g_t``."""

    reads_history: ClassVar[bool] = False

    def __init__(self, item_text: Tensor, user_text: Tensor, config: TextMatchingConfig):
        if item_text.dim() != 2 or user_text.dim() != 2:
            raise ValueError("item_text and user_text must be 2-d tables")
        if item_text.shape[1] != user_text.shape[1]:
            raise ValueError(
                f"item and user texts must come from one encoder: dims {item_text.shape[1]} "
                f"and {user_text.shape[1]} differ"
            )
        g_t = shared_mlp(item_text.shape[1], config.dim, config.layers, config.dropout)
        super().__init__(
            TextItemEncoder(item_text, g_t, config.dim), config.loss, config.n_negatives
        )
        self.config = config
        self.n_users = int(user_text.shape[0])
        self.register_buffer("user_text", user_text.detach().float().clone())

    @property
    def reads_user_text(self) -> bool:
        return True

    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        raise TypeError("TextMatching has no sequence encoder: its user vector is g_t(text)")

    def user_vectors(
        self,
        seqs: Tensor,
        lengths: Tensor,
        users: Tensor | None = None,
        item_table: Tensor | None = None,
        fuse: Tensor | None = None,
    ) -> Tensor:
        """``g_t(s_text_u)`` ``[B, dim]``; the history is not used (padding cannot leak).

        Text is all this model has, so it trains only on rows whose target the rationale
        has not seen (the trainer drops the others); ``fuse`` is accepted and ignored.
        """
        if users is None:
            raise ValueError("TextMatching scores users by their text: pass users=...")
        return self.item_encoder.g_t(self.user_text[users])
