"""Caser reads exactly each history's last ``window`` items, left-padded when shorter."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from slimrec.backbones import Caser, build_backbone
from slimrec.backbones.caser import last_window
from slimrec.errors import ConfigError

N_ITEMS, WINDOW = 40, 5


def make(name: str = "caser", **config) -> Caser:
    torch.manual_seed(0)
    text = torch.randn(N_ITEMS + 1, 16) if name.endswith("+") else None
    model = build_backbone(name, N_ITEMS, {"window": WINDOW, **config}, text)
    assert isinstance(model, Caser)
    return model.eval()


def test_last_window_takes_the_last_real_items_and_left_pads() -> None:
    seqs = torch.tensor([[7, 8, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 9, 9, 1, 2, 3]])
    lengths = torch.tensor([2, 6, 3])
    expected = [[0, 0, 0, 7, 8], [2, 3, 4, 5, 6], [0, 0, 9, 9, 9]]
    assert last_window(seqs, lengths, WINDOW).tolist() == expected
    # a batch narrower than the window
    assert last_window(torch.tensor([[4]]), torch.tensor([1]), 3).tolist() == [[0, 0, 4]]


@pytest.mark.parametrize("name", ["caser", "caser+"])
def test_short_history_scores_like_the_same_history_left_padded(name: str) -> None:
    model = make(name)
    short = torch.tensor([[11, 12, 13, 0, 0, 0, 0, 0]])
    left_padded = torch.tensor([[0, 0, 11, 12, 13]])  # padding written as history items
    with torch.no_grad():
        scores = model.full_sort_predict(short, torch.tensor([3]))
        padded = model.full_sort_predict(left_padded, torch.tensor([WINDOW]))
        alone = model.full_sort_predict(short[:, :3], torch.tensor([3]))  # narrower than L
    assert torch.isfinite(scores[:, 1:]).all()
    torch.testing.assert_close(scores, padded)
    torch.testing.assert_close(scores, alone)


def test_filters_compute_the_papers_convolutions() -> None:
    """Our linear maps equal Conv2d over the L x dim image (the authors' formulation)."""
    model = make(dim=8)
    d, n_h, n_v = 8, model.config.n_h, model.config.n_v
    g = torch.Generator().manual_seed(2)
    seqs = torch.randint(1, N_ITEMS + 1, (6, WINDOW), generator=g)
    lengths = torch.full((6,), WINDOW)
    table = model.item_encoder()
    image = table[seqs].unsqueeze(1)  # [B, 1, L, d]
    assert model.conv_v is not None
    v = F.conv2d(image, model.conv_v.weight.view(n_v, 1, WINDOW, 1), model.conv_v.bias)
    features = [v.flatten(1)]
    for h, conv in enumerate(model.conv_h, start=1):
        out = F.conv2d(image, conv.weight.view(n_h, 1, h, d), conv.bias).squeeze(3)
        features.append(F.relu(out).amax(dim=2))
    expected = F.relu(model.fc(torch.cat(features, dim=1)))
    with torch.no_grad():
        torch.testing.assert_close(model.encode(seqs, lengths, table), expected)


def test_only_the_last_window_items_matter() -> None:
    model = make()
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(1, N_ITEMS + 1, (4, 12), generator=g)
    lengths = torch.tensor([12, 9, 7, 6])
    with torch.no_grad():
        base = model.full_sort_predict(seqs, lengths)
        older = seqs.clone()
        for row, n in enumerate(lengths.tolist()):
            # every item before the window, and whatever lies after the history
            older[row, : n - WINDOW] = torch.randint(1, N_ITEMS + 1, (n - WINDOW,), generator=g)
            older[row, n:] = torch.randint(1, N_ITEMS + 1, (12 - n,), generator=g)
        torch.testing.assert_close(model.full_sort_predict(older, lengths), base)
        recent = seqs.clone()
        oldest_in_window = (torch.arange(4), lengths - WINDOW)
        recent[oldest_in_window] = seqs[oldest_in_window] % N_ITEMS + 1  # another item
        changed = model.full_sort_predict(recent, lengths)
    assert not torch.allclose(changed[:, 1:], base[:, 1:])


def test_learns_a_skip_rule_that_the_last_item_does_not_show() -> None:
    """The next item follows the item two steps back; the last item is random noise.

    Histories interleave a chain ``c, nxt(c), nxt(nxt(c)), ...`` with noise items, so
    only the window's second-to-last row predicts the target (the paper's "skip"
    behaviour, which its vertical filters capture). Held-out rows have unseen noise.
    """
    n, steps = 30, 4
    g = torch.Generator().manual_seed(0)
    nxt = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(n, generator=g) + 1])

    def sample(rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        chain = torch.randint(1, n + 1, (rows,), generator=g)
        cols = []
        for _ in range(steps):
            cols += [chain, torch.randint(1, n + 1, (rows,), generator=g)]
            chain = nxt[chain]
        return torch.stack(cols, dim=1), chain

    seqs, targets = sample(4000)
    test_seqs, test_targets = sample(500)
    lengths = torch.full((len(seqs),), 2 * steps)
    torch.manual_seed(0)
    model = build_backbone("caser", n, {"dropout": 0.1})
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(120):
        model.train()
        idx = torch.randint(0, len(seqs), (64,))
        opt.zero_grad()
        model.loss(seqs[idx], lengths[idx], targets[idx]).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = model.full_sort_predict(test_seqs, lengths[: len(test_seqs)])
    hit1 = (scores.argmax(1) == test_targets).float().mean().item()
    assert hit1 > 0.7, hit1  # chance is 1/30


@pytest.mark.parametrize(("n_h", "n_v"), [(0, 4), (16, 0)])
def test_either_convolution_alone_works(n_h: int, n_v: int) -> None:
    """The paper's ablations keep only the horizontal or only the vertical filters."""
    model = make(n_h=n_h, n_v=n_v)
    seqs, lengths = torch.tensor([[1, 2, 3, 0], [4, 5, 6, 7]]), torch.tensor([3, 4])
    assert torch.isfinite(model.full_sort_predict(seqs, lengths)[:, 1:]).all()


@pytest.mark.parametrize(
    "config", [{"window": 0}, {"n_h": 0, "n_v": 0}, {"n_h": -1}, {"user_dim": 8}]
)
def test_invalid_options_are_refused(config: dict) -> None:
    with pytest.raises(ConfigError):
        build_backbone("caser", N_ITEMS, config)
