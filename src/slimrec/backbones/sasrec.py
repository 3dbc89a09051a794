"""SASRec: self-attentive sequential recommendation.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018.

Items (their embeddings scaled by sqrt(dim), as in the authors' code) plus learned absolute
positions go through ``n_layers`` causal self-attention blocks
(multi-head attention + point-wise feed-forward, each wrapped in a residual connection with
dropout); the user vector is the output at the last real position. Two block layouts:

* ``norm_first=True`` (default, the paper, Sec. III-B "Stacking Self-Attention Blocks"):
  ``x = x + Dropout(g(LayerNorm(x)))`` for ``g`` in (attention, FFN), plus a final LayerNorm
  (as in the authors' code, which a pre-LN stack needs);
* ``norm_first=False``: RecBole's post-LN layout, ``x = LayerNorm(x + Dropout(g(x)))``, with a
  LayerNorm on the embeddings instead of at the end (RecBole's exactly with
  ``scale_embeddings=False``).

Padding: with right-padded input and a causal mask, every key a real position may attend to
is itself real, so the causal mask *is* the key-padding mask; we therefore call
``scaled_dot_product_attention(is_causal=True)`` (its fastest path, no ``[B, L, L]`` mask
tensor) and zero the padded positions' outputs after the embedding and every block, as the
authors' code does. Feature defaults follow RecBole (inner size 256, GELU, init N(0, 0.02));
dropout 0.2 and ``max_len`` 50 follow the paper's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from slimrec.backbones.base import (
    BackboneConfig,
    SequentialRecommender,
    gather_last,
    valid_mask,
)
from slimrec.backbones.items import IdItemEncoder, ItemEncoder

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}


@dataclass
class SASRecConfig(BackboneConfig):
    """SASRec settings (``dim``, ``dropout``, ``loss``, ``n_negatives`` from the base)."""

    n_layers: int = 2
    n_heads: int = 2
    inner_dim: int = 256
    attn_dropout: float = 0.2
    max_len: int = 50
    activation: str = "gelu"
    norm_first: bool = True
    layer_norm_eps: float = 1e-8
    ffn_inner_dropout: bool = True  # also drop between the FFN's layers (RecBole: only after)
    # Multiply item embeddings by sqrt(dim) before adding positions, as the authors' code
    # does (the paper's equations leave it out). Without it the small initial embeddings
    # (std 0.02) are swamped in the pre-LN residual stream and the model learns far slower
    # per step (ml-1m, docs/benchmarks.md). RecBole's post-LN layout has no scale.
    scale_embeddings: bool = True


class SASRecBlock(nn.Module):
    """One self-attention block: causal multi-head attention, then a point-wise FFN."""

    def __init__(self, cfg: SASRecConfig):
        super().__init__()
        self.n_heads, self.norm_first = cfg.n_heads, cfg.norm_first
        self.ffn_inner_dropout = cfg.ffn_inner_dropout
        self.attn_dropout = cfg.attn_dropout
        self.act = ACTIVATIONS[cfg.activation]
        self.ln1 = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.ln2 = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim)  # one matmul for Q, K and V
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.ff1 = nn.Linear(cfg.dim, cfg.inner_dim)
        self.ff2 = nn.Linear(cfg.inner_dim, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)

    def attention(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, n, d))

    def last_attention(self, query: Tensor, x: Tensor, lengths: Tensor) -> Tensor:
        """Attention of one query per row (``[B, d]``, the last real position) over ``x``."""
        b, n, d = x.shape
        heads, hd = self.n_heads, d // self.n_heads
        q = F.linear(query, self.qkv.weight[:d], self.qkv.bias[:d]).view(b, heads, 1, hd)
        kv = F.linear(x, self.qkv.weight[d:], self.qkv.bias[d:])
        k, v = kv.view(b, n, 2, heads, hd).permute(2, 0, 3, 1, 4)
        # The last real position sees every real key, i.e. keys < length.
        mask = valid_mask(x, lengths)[:, None, None, :]
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.proj(y.reshape(b, d))

    def ffn(self, x: Tensor) -> Tensor:
        h = self.act(self.ff1(x))
        return self.ff2(self.drop(h) if self.ffn_inner_dropout else h)

    def forward(self, x: Tensor) -> Tensor:
        if self.norm_first:
            x = x + self.drop(self.attention(self.ln1(x)))
            return x + self.drop(self.ffn(self.ln2(x)))
        x = self.ln1(x + self.drop(self.attention(x)))
        return self.ln2(x + self.drop(self.ffn(x)))

    def forward_last(self, x: Tensor, lengths: Tensor) -> Tensor:
        """``gather_last(forward(x), lengths)`` without computing the other positions."""
        last = gather_last(x, lengths)
        if self.norm_first:
            normed = self.ln1(x)
            last = last + self.drop(
                self.last_attention(gather_last(normed, lengths), normed, lengths)
            )
            return last + self.drop(self.ffn(self.ln2(last)))
        last = self.ln1(last + self.drop(self.last_attention(last, x, lengths)))
        return self.ln2(last + self.drop(self.ffn(last)))


class SASRec(SequentialRecommender):
    """SASRec over any :class:`ItemEncoder` (ID embeddings by default)."""

    revision = 2  # 2: scale_embeddings on by default

    def __init__(
        self,
        n_items: int,
        config: SASRecConfig | None = None,
        item_encoder: ItemEncoder | None = None,
    ):
        cfg = config or SASRecConfig()
        if cfg.n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {cfg.n_layers}")
        if cfg.dim % cfg.n_heads:
            raise ValueError(f"dim ({cfg.dim}) must be divisible by n_heads ({cfg.n_heads})")
        if cfg.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}")
        super().__init__(item_encoder or IdItemEncoder(n_items, cfg.dim), cfg.loss, cfg.n_negatives)
        self.config = cfg
        self.pos_embedding = nn.Embedding(cfg.max_len, cfg.dim)
        self.emb_ln = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)  # post-LN: on embeddings
        self.final_ln = nn.LayerNorm(cfg.dim, eps=cfg.layer_norm_eps)  # pre-LN: on the output
        self.blocks = nn.ModuleList(SASRecBlock(cfg) for _ in range(cfg.n_layers))
        self.drop = nn.Dropout(cfg.dropout)
        self._init_weights()

    def _init_weights(self) -> None:
        """RecBole/BERT init: N(0, 0.02) weights, zero biases, identity LayerNorms."""
        own = [m for name, m in self.named_modules() if not name.startswith("item_encoder")]
        for m in [*own, self.item_encoder.id_embedding]:
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.item_encoder.zero_padding_row_()

    def _embed(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> tuple[Tensor, Tensor]:
        """Input of the first block ``[B, L, dim]`` and the real-position mask ``[B, L, 1]``."""
        n = seqs.shape[1]
        if n > self.config.max_len:
            raise ValueError(f"sequence length {n} exceeds max_len={self.config.max_len}")
        keep = valid_mask(seqs, lengths).unsqueeze(-1).to(item_table.dtype)
        items = item_table[seqs]
        if self.config.scale_embeddings:
            items = items * self.config.dim**0.5
        x = items + self.pos_embedding.weight[:n]
        if not self.config.norm_first:
            x = self.emb_ln(x)
        return self.drop(x) * keep, keep

    def sequence_output(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        """Hidden states at every position ``[B, L, dim]`` (zero at padded positions)."""
        x, keep = self._embed(seqs, lengths, item_table)
        for block in self.blocks:
            x = block(x) * keep
        if self.config.norm_first:
            x = self.final_ln(x) * keep
        return x

    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        # Only the last real position is read, so the last block computes its query,
        # output projection and feed-forward there alone (keys and values still span the
        # sequence): ~40% less work for 2 blocks, in training on prefixes and at inference.
        x, keep = self._embed(seqs, lengths, item_table)
        for block in self.blocks[:-1]:
            x = block(x) * keep
        last = self.blocks[-1].forward_last(x, lengths)
        return self.final_ln(last) if self.config.norm_first else last
