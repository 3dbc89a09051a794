"""GRU4Rec: a recurrent network over the item sequence.

Hidasi et al., "Session-based Recommendations with Recurrent Neural Networks", ICLR 2016,
in the form sequential-recommendation benchmarks use (RecBole's ``GRU4Rec``): item
embedding -> dropout -> ``n_layers`` GRU (``hidden_dim``, no biases) -> linear back to
``dim``; the user vector is the output at the last real position and is scored against the
item table by dot product. (The original session-parallel mini-batches and ranking losses
are replaced by the shared losses in :mod:`slimrec.backbones.base`, as in RecBole.)

Padding: the GRU reads left to right, so with right-padded input the output at position
``lengths - 1`` never sees the padding; we also zero padded embeddings so nothing else can.
No ``pack_padded_sequence`` is needed, which keeps the fused cuDNN/oneDNN kernel path.

Initialisation as RecBole: Xavier-normal embeddings (std = sqrt(2 / (n_items + 1 + dim)),
close to the package-wide N(0, 0.02)), Xavier-uniform GRU weights, PyTorch's default for
the dense layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from slimrec.backbones.base import (
    BackboneConfig,
    SequentialRecommender,
    gather_last,
    valid_mask,
)
from slimrec.backbones.items import IdItemEncoder, ItemEncoder


@dataclass
class GRU4RecConfig(BackboneConfig):
    """GRU4Rec settings; defaults are RecBole's (``dim`` 64, hidden 128, 1 layer, dropout 0.3)."""

    dropout: float = 0.3
    hidden_dim: int = 128
    n_layers: int = 1


class GRU4Rec(SequentialRecommender):
    """GRU4Rec over any :class:`ItemEncoder` (ID embeddings by default)."""

    def __init__(
        self,
        n_items: int,
        config: GRU4RecConfig | None = None,
        item_encoder: ItemEncoder | None = None,
    ):
        cfg = config or GRU4RecConfig()
        super().__init__(item_encoder or IdItemEncoder(n_items, cfg.dim), cfg.loss, cfg.n_negatives)
        self.config = cfg
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.gru = nn.GRU(cfg.dim, cfg.hidden_dim, cfg.n_layers, bias=False, batch_first=True)
        self.dense = nn.Linear(cfg.hidden_dim, cfg.dim)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.xavier_normal_(self.item_encoder.id_embedding.weight)
        self.item_encoder.zero_padding_row_()
        for w in self.gru.parameters():
            nn.init.xavier_uniform_(w)

    def sequence_output(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        """User vectors after every position ``[B, L, dim]``; the GRU is causal, so the
        output at ``t`` depends only on items ``<= t`` and right padding cannot leak back."""
        keep = valid_mask(seqs, lengths).unsqueeze(-1).to(item_table.dtype)
        x = self.emb_dropout(item_table[seqs] * keep)
        out, _ = self.gru(x)
        return self.dense(out)

    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        return gather_last(self.sequence_output(seqs, lengths, item_table), lengths)
