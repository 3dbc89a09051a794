"""Shapes, padding, causality, graph building and save/load for every backbone."""

from __future__ import annotations

import io
import itertools

import pytest
import torch
from torch import Tensor, nn

from slimrec.backbones import BACKBONES, SASRec, SequentialRecommender, build_backbone
from slimrec.backbones.srgnn import session_graphs
from slimrec.errors import ConfigError

N_ITEMS = 40
NAMES = [*BACKBONES, *(f"{name}+" for name in BACKBONES)]


def make(name: str, seed: int = 0, **config) -> SequentialRecommender:
    torch.manual_seed(seed)
    text = torch.randn(N_ITEMS + 1, 16, generator=torch.Generator().manual_seed(1))
    return build_backbone(name, N_ITEMS, config, text if name.endswith("+") else None)


def batch(b: int = 5, n: int = 12, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Right-padded random histories, lengths 1..n (always including 1 and n)."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, n + 1, (b,), generator=g)
    lengths[0], lengths[-1] = 1, n
    seqs = torch.randint(1, N_ITEMS + 1, (b, n), generator=g)
    seqs[torch.arange(n)[None, :] >= lengths[:, None]] = 0
    return seqs, lengths


@pytest.mark.parametrize("name", NAMES)
def test_shapes_of_every_method(name: str) -> None:
    model = make(name)
    seqs, lengths = batch()
    b = seqs.shape[0]
    cands = torch.randint(1, N_ITEMS + 1, (b, 7))
    cands[0, 0] = 0
    assert model.user_vectors(seqs, lengths).shape == (b, model.dim)
    full = model.full_sort_predict(seqs, lengths)
    assert full.shape == (b, N_ITEMS + 1)
    assert torch.isneginf(full[:, 0]).all() and torch.isfinite(full[:, 1:]).all()
    scores = model.predict(seqs, lengths, cands)
    assert scores.shape == (b, 7) and torch.isneginf(scores[0, 0])
    # predict agrees with the matching columns of full_sort_predict
    model.eval()
    full, scores = model.full_sort_predict(seqs, lengths), model.predict(seqs, lengths, cands)
    torch.testing.assert_close(scores[:, 1:], full.gather(1, cands)[:, 1:])
    targets = torch.randint(1, N_ITEMS + 1, (b,))
    for loss in ("ce", "bce"):
        model.loss_type = loss
        value = model.loss(seqs, lengths, targets)
        assert value.dim() == 0 and torch.isfinite(value)
        value.backward()
    negs = torch.randint(1, N_ITEMS + 1, (b, 3))
    assert torch.isfinite(model.loss(seqs, lengths, targets, negs))
    table = model.item_encoder()
    assert table.shape == (N_ITEMS + 1, model.dim) and (table[0] == 0).all()
    ids = torch.randint(0, N_ITEMS + 1, (3, 4))
    torch.testing.assert_close(model.item_encoder.forward_ids(ids), table[ids])


@pytest.mark.parametrize("name", NAMES)
def test_padding_never_leaks(name: str) -> None:
    model = make(name).eval()
    seqs, lengths = batch(b=6, n=10, seed=3)
    garbage = seqs.clone()
    pad = torch.arange(10)[None, :] >= lengths[:, None]
    garbage[pad] = torch.randint(1, N_ITEMS + 1, (int(pad.sum()),))
    with torch.no_grad():
        clean = model.user_vectors(seqs, lengths)
        torch.testing.assert_close(model.user_vectors(garbage, lengths), clean)
        # each sequence alone, unpadded, gives the same vector as inside the padded batch
        for i in range(seqs.shape[0]):
            n = int(lengths[i])
            alone = model.user_vectors(seqs[i : i + 1, :n], lengths[i : i + 1])
            torch.testing.assert_close(alone[0], clean[i], atol=1e-5, rtol=1e-5)


def test_sasrec_is_causal() -> None:
    model = make("sasrec", n_layers=3).eval()
    assert isinstance(model, SASRec)
    seqs, _ = batch(b=4, n=10)
    full = torch.full((4,), 10)
    table = model.item_encoder()
    with torch.no_grad():
        out = model.sequence_output(seqs, full, table)
        for t in range(9):
            changed = seqs.clone()
            changed[:, t + 1 :] = torch.randint(1, N_ITEMS + 1, (4, 9 - t))
            after = model.sequence_output(changed, full, table)
            torch.testing.assert_close(after[:, : t + 1], out[:, : t + 1])
            assert not torch.allclose(after[:, t + 1 :], out[:, t + 1 :])


@pytest.mark.parametrize(("norm_first", "n_layers"), [(True, 2), (False, 2), (True, 1), (False, 3)])
def test_sasrec_encode_computes_only_the_last_position_exactly(norm_first, n_layers) -> None:
    """encode's shortcut (last block at the last position only) equals the full stack."""
    model = make("sasrec", norm_first=norm_first, n_layers=n_layers).eval()
    assert isinstance(model, SASRec)
    seqs, lengths = batch(b=9, n=15, seed=3)
    table = model.item_encoder()
    with torch.no_grad():
        full = model.sequence_output(seqs, lengths, table)
        last = full[torch.arange(9), lengths - 1]
        torch.testing.assert_close(model.encode(seqs, lengths, table), last, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="n_layers"):
        make("sasrec", n_layers=0)


@pytest.mark.parametrize("scale", [True, False])
def test_sasrec_scales_item_embeddings_by_sqrt_dim_only_when_asked(scale: bool) -> None:
    """The authors' code multiplies item (not position) embeddings by sqrt(dim)."""
    model = make("sasrec", scale_embeddings=scale).eval()
    assert isinstance(model, SASRec)
    seqs, lengths = batch(b=5, n=8, seed=4)
    table = model.item_encoder()
    x, keep = model._embed(seqs, lengths, table)
    factor = model.config.dim**0.5 if scale else 1.0
    expected = (table[seqs] * factor + model.pos_embedding.weight[:8]) * keep
    if not model.config.norm_first:
        expected = model.emb_ln(table[seqs] * factor + model.pos_embedding.weight[:8]) * keep
    torch.testing.assert_close(x, expected)


@pytest.mark.parametrize("norm_first", [True, False])
def test_sasrec_both_layer_norm_layouts_run(norm_first: bool) -> None:
    model = make("sasrec", norm_first=norm_first, activation="relu")
    seqs, lengths = batch()
    assert torch.isfinite(model.full_sort_predict(seqs, lengths)[:, 1:]).all()


@pytest.mark.parametrize("inner", [True, False])
def test_sasrec_ffn_dropout_inside_only_when_asked(inner: bool) -> None:
    """RecBole drops out only after the FFN's second layer; ours also between by default."""
    block = make("sasrec", dropout=0.5, ffn_inner_dropout=inner).blocks[0].train()
    x = torch.randn(4, 7, block.ff1.in_features)
    plain = block.ff2(block.act(block.ff1(x)))
    torch.manual_seed(0)
    assert torch.allclose(block.ffn(x), plain) is not inner


def test_srgnn_graph_matches_reference_construction() -> None:
    seqs = torch.tensor([[3, 1, 3, 2, 0, 0], [5, 5, 5, 0, 0, 0], [4, 2, 6, 1, 7, 9]])
    nodes, alias, a_in, a_out = session_graphs(seqs)
    for b, seq in enumerate(seqs.tolist()):  # the per-sequence loop of the authors' code
        real = [s for s in seq if s]
        uniq = sorted(set(seq))
        assert nodes[b, : len(uniq)].tolist() == uniq
        assert [uniq[a] for a in alias[b].tolist()] == seq
        adj = torch.zeros(6, 6)
        for u, v in itertools.pairwise(real):
            adj[uniq.index(u), uniq.index(v)] = 1
        torch.testing.assert_close(a_in[b], (adj / adj.sum(0).clamp(min=1)).T)
        torch.testing.assert_close(a_out[b], adj / adj.sum(1, keepdim=True).clamp(min=1))


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip(name: str) -> None:
    model = make(name, seed=0)
    seqs, lengths = batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.loss(seqs, lengths, torch.randint(1, N_ITEMS + 1, (5,))).backward()
    opt.step()  # move away from the init so a fresh model cannot match by chance
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    fresh = make(name, seed=1)
    fresh.load_state_dict(torch.load(buf))
    model.eval(), fresh.eval()
    with torch.no_grad():
        assert torch.equal(
            model.full_sort_predict(seqs, lengths), fresh.full_sort_predict(seqs, lengths)
        )


def test_user_fusion_hook_wraps_the_sequence_vector() -> None:
    class AddUserBias(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Embedding(3, 64)

        def forward(self, s_seq: Tensor, users: Tensor, fuse: Tensor | None = None) -> Tensor:
            return s_seq + self.bias(users)

    model = make("gru4rec").eval()
    seqs, lengths = batch(b=3)
    users = torch.tensor([0, 1, 2])
    plain = model.user_vectors(seqs, lengths)
    model.user_fusion = AddUserBias()
    fused = model.user_vectors(seqs, lengths, users)
    torch.testing.assert_close(fused, plain + model.user_fusion.bias(users))
    assert torch.isfinite(model.loss(seqs, lengths, torch.tensor([1, 2, 3]), users=users))


def test_build_backbone_errors() -> None:
    with pytest.raises(ConfigError, match="unknown backbone"):
        build_backbone("bert4rec", N_ITEMS)
    with pytest.raises(ConfigError, match="needs item text embeddings"):
        build_backbone("sasrec+", N_ITEMS)
    with pytest.raises(ConfigError, match="expected"):
        build_backbone("sasrec+", N_ITEMS, text_emb=torch.zeros(N_ITEMS, 8))
    with pytest.raises(ConfigError, match="does not use it"):
        build_backbone("srgnn", N_ITEMS, text_emb=torch.zeros(N_ITEMS + 1, 8))
    with pytest.raises(ConfigError, match="unknown option"):
        build_backbone("gru4rec", N_ITEMS, {"n_heads": 2})
    with pytest.raises(ConfigError, match="loss"):
        build_backbone("gru4rec", N_ITEMS, {"loss": "bpr"})
    with pytest.raises(ConfigError, match="divisible"):
        build_backbone("sasrec", N_ITEMS, {"dim": 10, "n_heads": 3})
    assert build_backbone(" SASRec+ ", N_ITEMS, text_emb=torch.ones(N_ITEMS + 1, 4)).dim == 64
