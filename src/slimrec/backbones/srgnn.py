"""SR-GNN: session-based recommendation with a gated graph neural network.

Wu et al., "Session-based Recommendation with Graph Neural Networks", AAAI 2019, as in the
authors' code and RecBole's ``SRGNN``:

1. each sequence becomes a directed graph over its *distinct* items, one edge per observed
   transition ``s_t -> s_{t+1}`` (binary, repeated transitions count once);
2. ``step`` rounds of a gated GNN: each node aggregates its in-neighbours through the
   in-degree-normalised adjacency and its out-neighbours through the out-degree-normalised
   one (separate linear maps), and a GRU-style gate merges that message into its state;
3. node states are mapped back to sequence positions; a soft attention over positions,
   queried by the last item, gives the global preference ``s_g``, which is concatenated with
   the last item's state ``s_l`` and projected to ``dim``.

Graph construction is vectorised over the batch: a row-wise sort finds each sequence's
distinct items (node ``k`` = the ``k``-th smallest distinct item, like ``np.unique`` in the
reference code), and ``scatter_add_`` writes all edges at once into ``[B, L, L]`` adjacency
matrices. Padding (item 0, and anything at positions ``>= lengths``, which is zeroed first)
becomes an isolated node with no edges that the attention masks out, so it cannot leak.

Initialisation as the paper/RecBole: every parameter ~ U(-1/sqrt(dim), 1/sqrt(dim)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from slimrec.backbones.base import (
    BackboneConfig,
    SequentialRecommender,
    gather_last,
    valid_mask,
)
from slimrec.backbones.items import IdItemEncoder, ItemEncoder


@dataclass
class SRGNNConfig(BackboneConfig):
    """SR-GNN settings; defaults are RecBole's (``dim`` 64, one GNN step, no dropout)."""

    dropout: float = 0.0
    step: int = 1


def session_graphs(seqs: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-sequence item graphs for zero-padded ``seqs`` ``[B, L]``, built without loops.

    Returns ``nodes`` ``[B, L]`` (distinct items, ascending, then 0), ``alias`` ``[B, L]``
    (node index of each position), and the normalised adjacencies ``a_in``, ``a_out``
    ``[B, L, L]`` with ``a_in[b, v, u] = 1 / indeg(v)`` and ``a_out[b, u, v] = 1 / outdeg(u)``
    for each edge ``u -> v``.
    """
    b, n = seqs.shape
    sorted_items, order = seqs.sort(dim=1)
    is_new = torch.ones_like(seqs, dtype=torch.bool)
    is_new[:, 1:] = sorted_items[:, 1:] != sorted_items[:, :-1]
    node_of_sorted = is_new.long().cumsum(1) - 1  # node index of each sorted position
    alias = torch.empty_like(seqs).scatter_(1, order, node_of_sorted)
    nodes = torch.zeros_like(seqs).scatter_(1, node_of_sorted, sorted_items)
    # Edges between consecutive real items; a transition into padding is not an edge.
    src, dst = alias[:, :-1], alias[:, 1:]
    real = ((seqs[:, :-1] != 0) & (seqs[:, 1:] != 0)).float()
    adj = torch.zeros(b, n * n, device=seqs.device)
    adj.scatter_add_(1, src * n + dst, real)
    adj = (adj.view(b, n, n) > 0).float()  # binary: a repeated transition counts once
    a_in = adj.transpose(1, 2) / adj.sum(1).clamp(min=1).unsqueeze(-1)
    a_out = adj / adj.sum(2).clamp(min=1).unsqueeze(-1)
    return nodes, alias, a_in, a_out


class GatedGNN(nn.Module):
    """The gated graph layer of SR-GNN (Eq. 1-5), applied ``step`` times."""

    def __init__(self, dim: int, step: int):
        super().__init__()
        self.step = step
        self.edge_in = nn.Linear(dim, dim)
        self.edge_out = nn.Linear(dim, dim)
        self.b_iah = nn.Parameter(torch.empty(dim))
        self.b_ioh = nn.Parameter(torch.empty(dim))
        self.w_ih = nn.Linear(2 * dim, 3 * dim)  # message -> reset, update, candidate
        self.w_hh = nn.Linear(dim, 3 * dim)  # state   -> reset, update, candidate

    def cell(self, a_in: Tensor, a_out: Tensor, h: Tensor) -> Tensor:
        msg = torch.cat(
            [a_in @ self.edge_in(h) + self.b_iah, a_out @ self.edge_out(h) + self.b_ioh], dim=-1
        )
        i_r, i_z, i_n = self.w_ih(msg).chunk(3, -1)
        h_r, h_z, h_n = self.w_hh(h).chunk(3, -1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_z + h_z)
        cand = torch.tanh(i_n + reset * h_n)
        # (1 - z) * cand + z * h, as the authors' code; the paper's Eq. 5 (and RecBole) swap
        # z and 1 - z, which is the same model with the sign of the update logits flipped.
        return cand + update * (h - cand)

    def forward(self, a_in: Tensor, a_out: Tensor, h: Tensor) -> Tensor:
        for _ in range(self.step):
            h = self.cell(a_in, a_out, h)
        return h


class SRGNN(SequentialRecommender):
    """SR-GNN over any :class:`ItemEncoder` (ID embeddings by default)."""

    def __init__(
        self,
        n_items: int,
        config: SRGNNConfig | None = None,
        item_encoder: ItemEncoder | None = None,
    ):
        cfg = config or SRGNNConfig()
        super().__init__(item_encoder or IdItemEncoder(n_items, cfg.dim), cfg.loss, cfg.n_negatives)
        self.config = cfg
        d = cfg.dim
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.gnn = GatedGNN(d, cfg.step)
        self.linear_one = nn.Linear(d, d)  # W_1: last item
        self.linear_two = nn.Linear(d, d)  # W_2: every item
        self.linear_three = nn.Linear(d, 1, bias=False)  # q
        self.linear_transform = nn.Linear(2 * d, d)  # W_3 on [s_g; s_l]
        self._init_weights()

    def _init_weights(self) -> None:
        bound = 1.0 / math.sqrt(self.config.dim)
        own = [p for name, p in self.named_parameters() if not name.startswith("item_encoder")]
        for p in [*own, self.item_encoder.id_embedding.weight]:
            nn.init.uniform_(p, -bound, bound)
        self.item_encoder.zero_padding_row_()

    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        mask = valid_mask(seqs, lengths)
        seqs = seqs.masked_fill(~mask, 0)  # whatever sits after `lengths` is padding
        nodes, alias, a_in, a_out = session_graphs(seqs)
        h = self.gnn(
            a_in.to(item_table.dtype),
            a_out.to(item_table.dtype),
            self.emb_dropout(item_table[nodes]),
        )
        seq_h = h.gather(1, alias.unsqueeze(-1).expand(-1, -1, h.shape[-1]))  # [B, L, d]
        last = gather_last(seq_h, lengths)
        alpha = self.linear_three(
            torch.sigmoid(self.linear_one(last).unsqueeze(1) + self.linear_two(seq_h))
        )
        s_g = (alpha * seq_h * mask.unsqueeze(-1)).sum(1)
        return self.linear_transform(torch.cat([s_g, last], dim=-1))
