"""Caser: convolutional sequence embedding over the most recent items.

Tang & Wang, "Personalized Top-N Sequential Recommendation via Convolutional Sequence
Embedding", WSDM 2018, as in the authors' code (``caser_pytorch``) and RecBole's ``Caser``:

1. the last ``window`` (the paper's ``L``) items are embedded as an ``L x dim`` "image";
2. horizontal convolutions: ``n_h`` filters of each height ``h = 1..L`` spanning the full
   width, ReLU, max-pooled over the ``L - h + 1`` positions (union-level and point-level
   sequential patterns, Sec. 3.2) -> ``n_h * L`` values;
3. a vertical convolution: ``n_v`` filters of shape ``L x 1``, each a learned weighted sum of
   the ``L`` rows, no activation (as in the authors' code) -> ``n_v * dim`` values;
4. both concatenated -> dropout -> fully connected to ``dim`` -> ReLU: the user vector,
   scored against the item table by dot product (the shared scoring of
   :mod:`slimrec.backbones.base`, so the "+" text-fused items work unchanged).

Deviation (stated): the paper concatenates a user embedding ``P_u`` to the convolutional
features before the output layer. slimrec scores users never seen in training and no other
backbone has per-user parameters, so the user embedding is left out; the user vector is the
convolutional sequence embedding alone. The paper's ``T`` future targets per window are
replaced by the shared next-item losses (``T = 1``, as RecBole does).

Padding: only each row's last ``window`` *real* items are read (positions ``< lengths``),
so right padding cannot leak; a history shorter than ``window`` is left-padded with item 0,
whose row of every item table is exactly zero. Caser has no per-position output (each user
vector is one window), so it trains on prefixes, not causal windows.

Defaults: ``window`` 5, ``n_h`` 16, ``n_v`` 4 as the authors' code; dropout 0.4 (RecBole's
and DELRec's Caser). Initialisation as RecBole: item embeddings N(0, 1/dim), Xavier-normal
dense weights with zero bias, PyTorch's default for the convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slimrec.backbones.base import BackboneConfig, SequentialRecommender
from slimrec.backbones.items import IdItemEncoder, ItemEncoder


@dataclass
class CaserConfig(BackboneConfig):
    """Caser settings (``dim``, ``dropout``, ``loss``, ``n_negatives`` from the base)."""

    dropout: float = 0.4
    window: int = 5  # L: how many of the most recent items the convolutions read
    n_h: int = 16  # horizontal filters per height 1..window
    n_v: int = 4  # vertical filters


def last_window(seqs: Tensor, lengths: Tensor, window: int) -> Tensor:
    """Each row's last ``window`` real items ``[B, window]``, left-padded with 0.

    ``seqs`` ``[B, T]`` is right-padded; ``T`` may be shorter than ``window``.
    """
    pos = lengths[:, None] - window + torch.arange(window, device=seqs.device)[None, :]
    return seqs.gather(1, pos.clamp(min=0)).masked_fill(pos < 0, 0)


class Caser(SequentialRecommender):
    """Caser over any :class:`ItemEncoder` (ID embeddings by default), without user embeddings."""

    def __init__(
        self,
        n_items: int,
        config: CaserConfig | None = None,
        item_encoder: ItemEncoder | None = None,
    ):
        cfg = config or CaserConfig()
        if cfg.window < 1 or cfg.n_h < 0 or cfg.n_v < 0 or cfg.n_h + cfg.n_v == 0:
            raise ValueError(
                f"need window >= 1 and n_h, n_v >= 0, not both 0; got {cfg.window}, "
                f"{cfg.n_h}, {cfg.n_v}"
            )
        super().__init__(item_encoder or IdItemEncoder(n_items, cfg.dim), cfg.loss, cfg.n_negatives)
        self.config = cfg
        d, n = cfg.dim, cfg.window
        # Each convolution is stored as the linear map it is: a full-width ``h x dim``
        # filter is a linear function of the flattened window, an ``L x 1`` filter a
        # weighted sum of rows. Same parameters and default init as ``nn.Conv2d`` (fan-in
        # h * dim and L), but plain matmuls: about half the CPU time of conv2d at these
        # shapes. Empty / None when that half is off (the paper's ablations).
        self.conv_h = nn.ModuleList(nn.Linear(h * d, cfg.n_h) for h in range(1, n + 1) if cfg.n_h)
        self.conv_v = nn.Linear(n, cfg.n_v) if cfg.n_v else None
        self.drop = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(cfg.n_h * len(self.conv_h) + cfg.n_v * d, d)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.item_encoder.id_embedding.weight, std=1.0 / self.config.dim)
        self.item_encoder.zero_padding_row_()
        nn.init.xavier_normal_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def encode(self, seqs: Tensor, lengths: Tensor, item_table: Tensor) -> Tensor:
        image = item_table[last_window(seqs, lengths, self.config.window)]  # [B, L, dim]
        features = []
        if self.conv_v is not None:
            # [B, dim, L] -> [B, dim, n_v] -> [B, n_v * dim] (filter-major, as Conv2d's view)
            features.append(self.conv_v(image.transpose(1, 2)).transpose(1, 2).flatten(1))
        for h, conv in enumerate(self.conv_h, start=1):
            # windows [B, L - h + 1, h * dim], rows of each window in order
            windows = image.unfold(1, h, 1).transpose(2, 3).flatten(2)
            features.append(F.relu(conv(windows)).amax(dim=1))  # max over time -> [B, n_h]
        return F.relu(self.fc(self.drop(torch.cat(features, dim=1))))
