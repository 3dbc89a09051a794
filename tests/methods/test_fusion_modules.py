"""SLIM's fusion modules: shapes, no padding leak, user text reaches exactly its user."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimrec.methods.slim.fusion import (
    TextMatching,
    TextMatchingConfig,
    UserTextFusion,
    build_model,
)
from slimrec.training.examples import causal_examples, prefix_examples

N_ITEMS, N_USERS, D_TEXT, DIM = 30, 6, 12, 16


def tables(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    items = rng.normal(size=(N_ITEMS + 1, D_TEXT)).astype(np.float32)
    items[0] = 0
    return items, rng.normal(size=(N_USERS, D_TEXT)).astype(np.float32)


def slim_model(backbone: str = "sasrec", seed: int = 0):
    torch.manual_seed(seed)
    items, users = tables(seed)
    opts = {"dim": DIM, "n_heads": 2, "max_len": 8} if backbone == "sasrec" else {"dim": DIM}
    return build_model(backbone, N_ITEMS, opts, item_text=items, user_text=users).eval()


def matching_model():
    torch.manual_seed(0)
    items, users = tables()
    return build_model("sasrec", N_ITEMS, {"dim": DIM}, item_text=items, user_text=users,
                       id_agnostic=True).eval()  # fmt: skip


BATCH = torch.tensor([[3, 5, 7, 0, 0], [1, 2, 3, 4, 5], [9, 0, 0, 0, 0]])
LENGTHS = torch.tensor([3, 5, 1])
USERS = torch.tensor([4, 0, 2])


def test_user_fusion_shapes_and_users_required():
    fusion = UserTextFusion(torch.randn(N_USERS, D_TEXT), DIM)
    assert fusion(torch.randn(3, DIM), USERS).shape == (3, DIM)
    per_position = fusion(torch.randn(3, 5, DIM), USERS)
    assert per_position.shape == (3, 5, DIM)
    # Every position of a row gets the same user's text: equal inputs give equal outputs.
    same = fusion(torch.ones(3, 5, DIM), USERS)
    assert torch.allclose(same[:, :1].expand_as(same), same)
    with pytest.raises(ValueError, match="user indices"):
        fusion(torch.randn(3, DIM), None)
    with pytest.raises(ValueError, match="expected"):
        fusion(torch.randn(3, DIM), torch.tensor([0, 1]))


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "srgnn", "caser"])
def test_slim_scores_shapes_and_padding_never_leaks(backbone):
    model = slim_model(backbone)
    scores = model.full_sort_predict(BATCH, LENGTHS, USERS)
    assert scores.shape == (3, N_ITEMS + 1) and torch.isinf(scores[:, 0]).all()
    junk = BATCH.clone()
    junk[0, 3:], junk[2, 1:] = torch.tensor([11, 12]), torch.tensor([13, 14, 15, 16])
    assert torch.allclose(model.full_sort_predict(junk, LENGTHS, USERS), scores)
    cands = torch.tensor([[1, 2, 0], [3, 4, 5], [6, 0, 0]])
    picked = model.predict(BATCH, LENGTHS, cands, USERS)
    assert torch.allclose(picked[cands > 0], scores.gather(1, cands)[cands > 0], atol=1e-5)
    assert torch.isinf(picked[cands == 0]).all()


@pytest.mark.parametrize("make", [slim_model, matching_model], ids=["slim", "text-matching"])
def test_a_users_text_changes_only_that_users_scores(make):
    model = make()
    seqs = BATCH[[0, 0, 0]]  # three users with the same history
    lengths, users = LENGTHS[[0, 0, 0]], torch.tensor([1, 3, 5])
    before = model.full_sort_predict(seqs, lengths, users)
    table = model.user_text if isinstance(model, TextMatching) else model.user_fusion.user_text
    assert not torch.allclose(before[0], before[1])  # different texts, different scores
    table[3] += 1.0
    after = model.full_sort_predict(seqs, lengths, users)
    assert torch.equal(after[[0, 2]], before[[0, 2]])
    assert (after[1, 1:] - before[1, 1:]).abs().max() > 1e-3


def test_text_matching_ignores_history_and_has_no_ids():
    model = matching_model()
    a = model.full_sort_predict(BATCH, LENGTHS, USERS)
    b = model.full_sort_predict(
        torch.tensor([[1, 0, 0, 0, 0]] * 3), torch.ones(3, dtype=torch.long), USERS
    )
    assert torch.equal(a, b)
    assert not any("id_embedding" in name for name in model.state_dict())
    assert torch.equal(model.item_encoder()[0], torch.zeros(DIM))  # padding row
    with pytest.raises(ValueError, match="pass users"):
        model.full_sort_predict(BATCH, LENGTHS)
    with pytest.raises(ValueError, match="one encoder"):
        TextMatching(torch.randn(5, 4), torch.randn(3, 5), TextMatchingConfig(dim=4))


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec"])
def test_causal_loss_with_fusion_equals_the_prefix_loss(backbone):
    """A window fused per position trains on exactly the prefix pairs' losses."""
    model = slim_model(backbone)
    histories = [np.array([4, 8, 15, 16, 23]), np.array([2, 3, 5]), np.array([7, 1, 9, 10])]
    causal = causal_examples(histories, max_len=8)
    prefix = prefix_examples(histories, max_len=8)
    users = torch.tensor([5, 1, 3])
    seqs, lengths, targets, owners, _ = causal.batch(torch.arange(len(causal)))
    got = model.sequence_loss(seqs, lengths, targets, users[owners])
    seqs, lengths, targets, owners, _ = prefix.batch(torch.arange(len(prefix)))
    want = model.loss(seqs, lengths, targets, users=users[owners])
    assert torch.allclose(got, want, atol=1e-5)
    # The user text is really in it: another user's text gives another loss.
    window = causal.batch(torch.arange(len(causal)))[:3]
    assert not torch.allclose(model.sequence_loss(*window, users.flip(0)), got)


def design_model(design: str, backbone: str = "sasrec"):
    torch.manual_seed(0)
    items, users = tables()
    opts = {"dim": DIM, "n_heads": 2, "max_len": 8} if backbone == "sasrec" else {"dim": DIM}
    return build_model(
        backbone, N_ITEMS, opts, item_text=items, user_text=users, fusion=design
    ).eval()


@pytest.mark.parametrize("design", ["residual", "gate", "fast-gate"])
def test_identity_designs_start_as_the_plain_backbone(design):
    """Residual and gated fusions score exactly like the sequence vector before training."""
    model = design_model(design)
    table = model.item_encoder()
    s_seq = model.encode(BATCH, LENGTHS, table)
    fused = model.user_vectors(BATCH, LENGTHS, USERS, table)
    assert torch.equal(fused, s_seq)
    concat = design_model("concat")
    table = concat.item_encoder()
    assert not torch.allclose(
        concat.user_vectors(BATCH, LENGTHS, USERS, table), concat.encode(BATCH, LENGTHS, table)
    )


@pytest.mark.parametrize("design", ["residual", "gate", "fast-gate"])
def test_text_left_out_where_fuse_is_false(design):
    """Where the rationale has seen the target, the fused vector is the sequence vector."""
    fusion = UserTextFusion(torch.randn(N_USERS, D_TEXT), DIM, design=design)
    with torch.no_grad():  # open the text branch, as training would
        for p in fusion.parameters():
            p.add_(0.5)
    s_seq = torch.randn(3, DIM)
    active = torch.tensor([True, False, True])
    out = fusion(s_seq, USERS, active)
    assert torch.equal(out[1], s_seq[1])
    assert not torch.allclose(out[[0, 2]], s_seq[[0, 2]])
    assert torch.equal(out[[0, 2]], fusion(s_seq, USERS)[[0, 2]])


def gate_opening(design: str, steps: int) -> float:
    """``|tanh(speed * a)|`` after ``steps`` Adam steps (lr 1e-3) to a text-dependent target."""
    torch.manual_seed(0)
    text = torch.randn(N_USERS, D_TEXT)
    fusion = UserTextFusion(text, DIM, design=design)
    s_seq, users = torch.randn(N_USERS, DIM), torch.arange(N_USERS)
    target = s_seq + text @ torch.randn(D_TEXT, DIM)
    optimiser = torch.optim.Adam(fusion.parameters(), lr=1e-3)
    for _ in range(steps):
        optimiser.zero_grad()
        torch.nn.functional.mse_loss(fusion(s_seq, users), target).backward()
        optimiser.step()
    return float(torch.tanh(fusion.gate_speed * fusion.gate.detach()).abs())


def test_the_fast_gate_opens_faster_than_the_gate():
    """Adam moves the gate's one scalar ~lr per step: the plain gate is still nearly shut
    after 50 steps, the fast one (tanh(10 a)) is well open (docs/benchmarks.md)."""
    gate, fast = gate_opening("gate", 50), gate_opening("fast-gate", 50)
    assert gate < 0.1 < 0.3 < fast, (gate, fast)


def test_unknown_fusion_design_is_refused():
    with pytest.raises(ValueError, match="fusion design"):
        UserTextFusion(torch.randn(N_USERS, D_TEXT), DIM, design="sum")


@pytest.mark.parametrize("design", ["concat", "residual", "gate", "fast-gate"])
@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec"])
def test_held_out_causal_loss_equals_the_held_out_prefix_loss(backbone, design):
    """With a hold-out, windows and prefixes fuse the text at the very same pairs."""
    model = design_model(design, backbone)
    with torch.no_grad():
        for p in model.user_fusion.parameters():
            p.add_(0.3)  # leave the identity init, so fused and unfused pairs differ
    histories = [np.array([4, 8, 15, 16, 23]), np.array([2, 3, 5]), np.array([7, 1, 9, 10])]
    causal = causal_examples(histories, max_len=8, hold_out=2)
    prefix = prefix_examples(histories, max_len=8, hold_out=2)
    # The last two targets of each user ([2, 3, 5]: the rationale keeps one item, so both).
    assert causal.fuse.sum() == prefix.fuse.sum() == 6
    users = torch.tensor([5, 1, 3])
    seqs, lengths, targets, owners, fuse = causal.batch(torch.arange(len(causal)))
    got = model.sequence_loss(seqs, lengths, targets, users[owners], fuse)
    seqs, lengths, targets, owners, fuse = prefix.batch(torch.arange(len(prefix)))
    want = model.loss(seqs, lengths, targets, users=users[owners], fuse=fuse)
    assert torch.allclose(got, want, atol=1e-5)
    everywhere = model.loss(seqs, lengths, targets, users=users[owners])
    assert not torch.allclose(everywhere, want)
