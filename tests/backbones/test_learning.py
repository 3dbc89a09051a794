"""Every backbone learns a deterministic next-item rule from a few seconds of Adam.

Items 1..30 follow a fixed random successor map ``nxt`` (a permutation); a history is
``start, nxt(start), nxt(nxt(start)), ...`` and the target is the next item. Histories are
split by (start, length) so the evaluation pairs were never trained on.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from slimrec.backbones import build_backbone

N_ITEMS, MAX_LEN = 30, 8


def make_data(seed: int = 0) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    nxt = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(N_ITEMS, generator=g) + 1])
    starts = torch.arange(1, N_ITEMS + 1).repeat_interleave(MAX_LEN - 1)
    lengths = torch.arange(2, MAX_LEN + 1).repeat(N_ITEMS)
    seqs = torch.zeros(len(starts), MAX_LEN, dtype=torch.long)
    cur = starts.clone()
    for t in range(MAX_LEN):
        seqs[:, t] = torch.where(t < lengths, cur, 0)
        cur = torch.where(t < lengths, nxt[cur], cur)
    targets = cur  # successor of the last real item
    test = torch.randperm(len(starts), generator=g)[: len(starts) // 5]
    is_test = torch.zeros(len(starts), dtype=torch.bool)
    is_test[test] = True
    split = [(seqs[m], lengths[m], targets[m]) for m in (~is_test, is_test)]
    return split[0], split[1]


def hits(model, seqs: Tensor, lengths: Tensor, targets: Tensor) -> tuple[float, float]:
    """(Hit@10, Hit@1) of the held-out next items."""
    model.eval()
    with torch.no_grad():
        top = model.full_sort_predict(seqs, lengths).topk(10, dim=1).indices
    hit = top == targets[:, None]
    return hit.any(1).float().mean().item(), hit[:, 0].float().mean().item()


@pytest.mark.parametrize(
    ("name", "loss"),
    [
        ("gru4rec", "ce"),
        ("sasrec", "ce"),
        ("sasrec", "bce"),
        ("srgnn", "ce"),
        ("srgnn", "bce"),
        ("caser", "ce"),
        ("caser", "bce"),
        ("caser+", "ce"),
        ("sasrec+", "ce"),
        ("gru4rec+", "bce"),
    ],
)
def test_backbone_learns_next_item_rule(name: str, loss: str) -> None:
    torch.manual_seed(0)
    (seqs, lengths, targets), test = make_data()
    text = torch.randn(N_ITEMS + 1, 24) if name.endswith("+") else None
    config = {"loss": loss, "n_negatives": 4, "dropout": 0.1}
    if name.startswith("sasrec"):
        config["max_len"] = MAX_LEN
    model = build_backbone(name, N_ITEMS, config, text)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(150):
        model.train()
        idx = torch.randint(0, len(seqs), (64,))
        opt.zero_grad()
        model.loss(seqs[idx], lengths[idx], targets[idx]).backward()
        opt.step()
    hit10, hit1 = hits(model, *test)
    # chance is 10/30 and 1/30; in practice all configurations reach Hit@10 = 1.0
    assert hit10 > 0.9 and hit1 > 0.7, (hit10, hit1)
