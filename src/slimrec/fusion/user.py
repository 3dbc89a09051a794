"""SLIM's user-side fusion: the user vector enriched with the user's rationale embedding.

Wang et al., "Can Small Language Models be Good Reasoners for Sequential Recommendation?",
WWW 2024, Sec. 3.3 (ID-based): ``s_u = g_f([g_l(s_text_u); s_seq_u])`` where ``s_text_u`` is
the frozen text embedding of user ``u``'s rationale and ``s_seq_u`` the backbone's sequence
encoding. It mirrors the item side (:class:`~slimrec.backbones.items.TextFusedItemEncoder`)
and plugs into :attr:`SequentialRecommender.user_fusion`, so every scoring method and loss
of every backbone picks it up.

The text table is a buffer (one row per dense user index): it moves with ``.to(device)``
and is saved in the ``state_dict``, so a trained model file is self-contained. A user with
no rationale has a zero row; ``g_l`` then contributes only its bias, the same "no text"
vector for all such users.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class UserTextFusion(nn.Module):
    """``s_u = g_f([g_l(s_text_u); s_seq_u])``, called as ``fusion(s_seq, users)``.

    ``s_seq`` is ``[B, dim]`` (one vector per user) or ``[B, L, dim]`` (a causal window's
    vector after every position; all positions of row ``b`` belong to ``users[b]``, so the
    same text vector is fused into each of them).
    """

    def __init__(self, user_text: Tensor, dim: int, dropout: float = 0.0):
        super().__init__()
        if user_text.dim() != 2 or user_text.shape[0] < 1:
            raise ValueError(
                f"user_text must have shape [n_users, d_text]; got {list(user_text.shape)}"
            )
        self.n_users, self.dim = int(user_text.shape[0]), dim
        self.register_buffer("user_text", user_text.detach().float().clone())
        self.g_l = nn.Linear(user_text.shape[1], dim)
        self.g_f = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        for lin in (self.g_l, self.g_f):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, s_seq: Tensor, users: Tensor | None) -> Tensor:
        if users is None:
            raise ValueError("this model fuses user text: pass the user indices (users=...)")
        if users.shape != s_seq.shape[:1]:
            raise ValueError(f"users has shape {list(users.shape)}, expected [{s_seq.shape[0]}]")
        return self.fuse_text(s_seq, self.user_text[users])

    def fuse_text(self, s_seq: Tensor, text: Tensor) -> Tensor:
        """The fusion with given text embeddings ``[B, d_text]`` instead of table rows.

        Serving a history no user of the table wrote needs exactly this: the rationale the
        student writes for it, embedded like the table was, fused the same way.
        """
        if text.shape != (s_seq.shape[0], self.user_text.shape[1]):
            raise ValueError(
                f"text has shape {list(text.shape)}, expected "
                f"[{s_seq.shape[0]}, {self.user_text.shape[1]}]"
            )
        text = self.dropout(self.g_l(text.to(self.user_text)))  # [B, dim]
        if s_seq.dim() == 3:
            text = text[:, None, :].expand(-1, s_seq.shape[1], -1)
        return self.g_f(torch.cat([text, s_seq], dim=-1))
