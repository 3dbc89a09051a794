"""SLIM's user-side fusion: the user vector enriched with the user's rationale embedding.

Wang et al., "Can Small Language Models be Good Reasoners for Sequential Recommendation?",
WWW 2024, Sec. 3.3 (ID-based): ``s_u = g_f([g_l(s_text_u); s_seq_u])`` where ``s_text_u`` is
the frozen text embedding of user ``u``'s rationale and ``s_seq_u`` the backbone's sequence
encoding. It mirrors the item side (:class:`~slimrec.backbones.items.TextFusedItemEncoder`)
and plugs into :attr:`SequentialRecommender.user_fusion`, so every scoring method and loss
of every backbone picks it up.

Four designs (``design``):

* ``concat``: the paper's ``g_f([g_l(t); s_seq])``. From a random init ``g_f`` scrambles
  the sequence vector, which the backbone must then learn again (measured: it costs
  accuracy even when every text vector is zero; docs/benchmarks.md, "SLIM fusion").
* ``residual``: ``s_seq + g_f([g_l(t); s_seq])`` with ``g_f`` zero-initialised: the model
  starts as the plain backbone and learns a text-dependent correction.
* ``gate``: ``s_seq + tanh(a) * g_l(t)`` with a learned scalar ``a = 0`` at init
  (Flamingo's tanh gate): the text enters only as far as training opens the gate.
* ``fast-gate``: ``s_seq + tanh(GATE_SPEED * a) * g_l(t)``, the same gate opening
  ``GATE_SPEED`` times faster. Adam moves the one scalar ``a`` by about the learning rate
  per step whatever its gradient, and ``g_l`` learns only as ``a`` leaves 0, so at lr
  1e-3 the plain gate is still nearly shut after SASRec's best epoch on the games subset
  (~160 steps); ``GATE_SPEED = 10`` lets it open within ~100 steps. SLIM's default
  (``slim``): level with Backbone+ on weak text, and it passes more of strong text on
  than the residual (docs/benchmarks.md, "The fast gate becomes SLIM's fusion").

``active`` (bool per row) marks where a rationale may be fused: a training position whose
target the rationale has already seen gets none (``residual``/``gate``: exactly
``s_seq``; ``concat``: a zero text projection), so the model never learns to trust text
that reveals the answer (see :func:`slimrec.data.prepared.rationale_cutoff`).

The text table is a buffer (one row per dense user index): it moves with ``.to(device)``
and is saved in the ``state_dict``, so a trained model file is self-contained.
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import Tensor, nn

from slimrec.methods.slim.config import FusionDesign

FUSION_DESIGNS: tuple[str, ...] = get_args(FusionDesign)
GATE_SPEED = 10.0


class UserTextFusion(nn.Module):
    """The fused user vector, called as ``fusion(s_seq, users, active)``.

    ``s_seq`` is ``[B, dim]`` (one vector per user) or ``[B, L, dim]`` (a causal window's
    vector after every position; all positions of row ``b`` belong to ``users[b]``).
    """

    def __init__(self, user_text: Tensor, dim: int, dropout: float = 0.0, design: str = "concat"):
        super().__init__()
        if user_text.dim() != 2 or user_text.shape[0] < 1:
            raise ValueError(
                f"user_text must have shape [n_users, d_text]; got {list(user_text.shape)}"
            )
        if design not in FUSION_DESIGNS:
            raise ValueError(f"fusion design must be one of {FUSION_DESIGNS}, got {design!r}")
        self.n_users, self.dim, self.design = int(user_text.shape[0]), dim, design
        self.register_buffer("user_text", user_text.detach().float().clone())
        self.g_l = nn.Linear(user_text.shape[1], dim)
        self.dropout = nn.Dropout(dropout)
        nn.init.xavier_uniform_(self.g_l.weight)
        nn.init.zeros_(self.g_l.bias)
        if design in ("gate", "fast-gate"):
            self.gate = nn.Parameter(torch.zeros(()))
            self.gate_speed = GATE_SPEED if design == "fast-gate" else 1.0
        else:
            self.g_f = nn.Linear(2 * dim, dim)
            init = nn.init.zeros_ if design == "residual" else nn.init.xavier_uniform_
            init(self.g_f.weight)
            nn.init.zeros_(self.g_f.bias)

    def forward(self, s_seq: Tensor, users: Tensor | None, active: Tensor | None = None) -> Tensor:
        if users is None:
            raise ValueError("this model fuses user text: pass the user indices (users=...)")
        if users.shape != s_seq.shape[:1]:
            raise ValueError(f"users has shape {list(users.shape)}, expected [{s_seq.shape[0]}]")
        return self.fuse_text(s_seq, self.user_text[users], active)

    def fuse_text(self, s_seq: Tensor, text: Tensor, active: Tensor | None = None) -> Tensor:
        """The fusion with given text embeddings ``[B, d_text]`` instead of table rows.

        Serving a history no user of the table wrote needs exactly this: the rationale the
        student writes for it, embedded like the table was, fused the same way.
        ``active`` ``[B]`` (or ``[B, L]`` with a 3-d ``s_seq``): where text may be fused.
        """
        if text.shape != (s_seq.shape[0], self.user_text.shape[1]):
            raise ValueError(
                f"text has shape {list(text.shape)}, expected "
                f"[{s_seq.shape[0]}, {self.user_text.shape[1]}]"
            )
        text = self.dropout(self.g_l(text.to(self.user_text)))  # [B, dim]
        if s_seq.dim() == 3:
            text = text[:, None, :].expand(-1, s_seq.shape[1], -1)
        on = None if active is None else active.to(text.dtype).unsqueeze(-1)
        if self.design == "concat":
            return self.g_f(torch.cat([text if on is None else text * on, s_seq], dim=-1))
        delta = (
            torch.tanh(self.gate_speed * self.gate) * text
            if self.design in ("gate", "fast-gate")
            else self.g_f(torch.cat([text, s_seq], dim=-1))
        )
        return s_seq + (delta if on is None else delta * on)
