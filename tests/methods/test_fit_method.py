"""fit_method for every method, recommend from run folders, resume, and input errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from tests.methods.synthetic import hint_data

from slimrec.errors import ConfigError
from slimrec.eval import EvalConfig, evaluate
from slimrec.methods import METHODS, fit_method, get_method, load_model, recommend, user_text_table
from slimrec.text import TextEncoder
from slimrec.training import TrainConfig, Trainer


@pytest.fixture(scope="module")
def tiny():
    return hint_data(n_users=60, seed=1)


def small(**kw) -> TrainConfig:
    base = dict(model={"dim": 8}, epochs=2, batch_size=32, lr=5e-3, max_len=10, seed=0)
    return TrainConfig(**(base | {"threads": 1} | kw))


@pytest.mark.parametrize(
    "method", sorted(m for m in METHODS if not get_method(m).needs().teacher)
)  # methods that learn from a trained run: tests/methods/test_llmsrec.py
def test_every_method_trains_evaluates_and_recommends(method, tiny, tmp_path):
    data, item_text, user_text = tiny
    results = fit_method(method, data, small(), tmp_path, item_text=item_text, user_text=user_text)
    assert results["method"] == method and set(results["test"]) == {"full", "sampled"}
    assert results["test"]["full"]["n_users"] == data.n_users
    needs = get_method(method).needs()
    assert results["layout"] == ("causal" if needs.per_backbone else "prefix")
    # The run folder alone rebuilds the model, text tables included.
    model = load_model(tmp_path)
    has_user_text = any("user_text" in name for name in model.state_dict())
    assert has_user_text == bool(needs.user_text)
    users = [0, 5, 59]
    items, scores = recommend(tmp_path, data, users, k=7, history="test")
    assert items.shape == scores.shape == (3, 7) and (np.diff(scores, axis=1) <= 0).all()
    for row, u in zip(items, users, strict=True):
        assert not set(row) & set(data.sequences[u][:-1].tolist())  # history is masked
    again, _ = recommend(tmp_path, data, users[::-1], k=7, history="test", batch_size=2)
    assert np.array_equal(again, items[::-1])


def test_recommend_matches_the_evaluated_model_and_refuses_bad_users(tiny, tmp_path):
    data, item_text, user_text = tiny
    results = fit_method(
        "slim", data, small(epochs=1), tmp_path, item_text=item_text, user_text=user_text
    )
    # Re-scoring the run folder gives exactly the metrics its training reported.
    model = load_model(tmp_path)
    scorer = Trainer(small(), tmp_path)
    scorer.model_ = model
    for protocol in ("full", "sampled"):
        cfg = EvalConfig(protocol=protocol, ks=(10, 20), seed=0)
        assert scorer.evaluate(data, "test", cfg) == results["test"][protocol]
    users = torch.arange(4)
    # Serving reads the whole sequence (cut to max_len) of the asked users.
    full = torch.tensor(np.stack(data.sequences[:4]))  # 4 items each, under max_len
    top = model.full_sort_predict(full, torch.full((4,), 4), users).topk(5)
    items, scores = recommend(tmp_path, data, [0, 1, 2, 3], k=5, mask_history=False)
    assert np.array_equal(items, top.indices.numpy())
    assert np.allclose(scores, top.values.detach().numpy())
    with pytest.raises(ConfigError, match="user indices"):
        recommend(tmp_path, data, [data.n_users], k=5)
    # Fewer than k unseen items: the rest of the row is item 0 at -inf.
    items, scores = recommend(tmp_path, data, [0], k=data.n_items)
    n_seen = len(set(data.sequences[0].tolist()))
    assert (items[0, -n_seen:] == 0).all() and np.isinf(scores[0, -n_seen:]).all()


def test_slim_run_resumes_exactly_and_keys_on_the_user_text(tiny, tmp_path):
    data, item_text, user_text = tiny
    fit = lambda epochs, out, ut=user_text: fit_method(  # noqa: E731
        "slim", data, small(epochs=epochs, patience=100), out, item_text=item_text, user_text=ut
    )
    straight = fit(3, tmp_path / "a")
    fit(1, tmp_path / "b")  # "killed" after one epoch
    resumed = fit(3, tmp_path / "b")
    assert {k: v for k, v in resumed.items() if k != "key"} == {
        k: v for k, v in straight.items() if k != "key"
    }
    a, b = (torch.load(tmp_path / p / "best.pt") for p in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert fit(3, tmp_path / "a") == straight  # finished: reused
    other = user_text.copy()
    other[0] = 0.0  # another rationale file is another run
    with pytest.raises(ConfigError, match="other settings"):
        fit(3, tmp_path / "a", other)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [0, 1, 2]


def test_inputs_are_checked(tiny, tmp_path):
    data, item_text, user_text = tiny
    with pytest.raises(ConfigError, match="unknown method"):
        fit_method("slim2", data, small(), tmp_path, item_text=item_text, user_text=user_text)
    with pytest.raises(ConfigError, match="needs user text"):
        fit_method("slim", data, small(), tmp_path, item_text=item_text, user_text=None)
    with pytest.raises(ConfigError, match="base backbone"):
        fit_method("slim", data, small(backbone="sasrec+"), tmp_path, item_text=item_text,
                   user_text=user_text)  # fmt: skip
    with pytest.raises(ConfigError, match="rows"):
        fit_method("slim", data, small(), tmp_path, item_text=item_text, user_text=user_text[:5])
    # Inputs a method does not use are ignored, so one pair of tables serves every method.
    plain = fit_method("backbone", data, small(epochs=1), tmp_path / "p", item_text=item_text,
                       user_text=user_text)  # fmt: skip
    assert not any("text" in k for k in torch.load(tmp_path / "p" / "best.pt"))
    assert plain["method"] == "backbone"


def test_user_text_table_embeds_through_the_cache(tmp_path):
    encoder = TextEncoder(cache=tmp_path / "emb.sqlite")
    rationales = pd.DataFrame(
        {
            "user": [3, 0, 1],
            "response": ["Step 1: loves sci-fi", "Step 1: jazz fan", "  "],
            "step2": ["space operas", "", "cookbooks"],
        }
    )
    table, missing = user_text_table(rationales, 5, encoder)
    assert table.shape == (5, 384) and table.dtype == np.float32 and missing == 3
    assert np.array_equal(table[3], encoder.encode(["Step 1: loves sci-fi"])[0])
    assert not table[[1, 2, 4]].any()  # empty response, no row, no row
    step2, missing2 = user_text_table(rationales, 5, encoder, field="step2")
    assert missing2 == 3 and step2[1].any() and not step2[0].any()
    for bad, match in [
        (rationales.assign(user=[3, 0, 9]), "outside"),
        (rationales.assign(user=[3, 3, 1]), "more than one"),
        (rationales.drop(columns="user"), "no column 'user'"),
    ]:
        with pytest.raises(ConfigError, match=match):
            user_text_table(bad, 5, encoder)
    with pytest.raises(ConfigError, match="no column 'step3'"):
        user_text_table(rationales, 5, encoder, field="step3")
    with pytest.raises(ConfigError, match="unknown rationale field"):
        user_text_table(rationales, 5, encoder, field="prompt")


def test_evaluate_passes_each_batchs_users():
    seen = []

    def score(seqs, candidates, users):
        seen.append(users.tolist())
        table = torch.zeros(len(users), 6)
        table[torch.arange(len(users)), users + 1] = 1.0  # user u likes item u + 1
        return table if candidates is None else table.gather(1, candidates)

    hist = [np.array([5])] * 3
    got = evaluate(score, hist, np.array([1, 2, 3]), 5, EvalConfig(ks=(1,), batch_size=2),
                   users=np.arange(3))  # fmt: skip
    assert got["hit@1"] == 1.0 and seen == [[0, 1], [2]]


def test_text_controls_zero_or_shuffle_the_rationales():
    from slimrec.methods.slim import text_control

    table = np.arange(12, dtype=np.float32).reshape(6, 2) + 1
    table[4] = 0  # a user without text keeps none
    assert not text_control(table, "zero", seed=0).any()
    shuffled = text_control(table, "shuffled", seed=0)
    assert not shuffled[4].any()
    assert sorted(map(tuple, shuffled)) == sorted(map(tuple, table))  # the same rationales
    assert not np.array_equal(shuffled, table)  # ... given to other users
    assert np.array_equal(shuffled, text_control(table, "shuffled", seed=0))
    assert not np.array_equal(shuffled, text_control(table, "shuffled", seed=1))
    with pytest.raises(ConfigError, match="unknown text control"):
        text_control(table, "reversed", seed=0)


def test_the_random_control_draws_a_code_per_user_with_the_rationales_statistics():
    from slimrec.methods.slim import text_control

    rng = np.random.default_rng(7)
    table = (rng.standard_normal((4000, 3)) @ np.array([[2, 0, 0], [1, 1, 0], [0, 0, 0.2]])
             + [5, -1, 0]).astype(np.float32)  # fmt: skip
    table[:10] = 0  # users without text keep none
    got = text_control(table, "random", seed=0)
    assert not got[:10].any() and got[10:].all(axis=1).all()
    texts, codes = table[10:].astype(np.float64), got[10:].astype(np.float64)
    assert np.allclose(codes.mean(axis=0), texts.mean(axis=0), atol=0.1)
    assert np.allclose(np.cov(codes.T), np.cov(texts.T), rtol=0.1, atol=0.02)
    assert abs(np.corrcoef(codes[:, 0], texts[:, 0])[0, 1]) < 0.05  # says nothing of the user
    # Whose text it is does not matter: the same draws for the rationales shuffled.
    shuffled = text_control(table, "shuffled", seed=3)
    assert np.allclose(text_control(shuffled, "random", seed=0), got, atol=1e-4)
    assert np.array_equal(got, text_control(table, "random", seed=0))
    assert not np.allclose(got, text_control(table, "random", seed=1))
    with pytest.raises(ConfigError, match="at least two users"):
        text_control(np.eye(2, dtype=np.float32)[:1], "random", seed=0)


def test_the_mean_control_gives_every_user_with_text_the_same_mean_rationale():
    from slimrec.methods.slim import text_control

    table = np.array([[1, 2], [0, 0], [3, 6]], dtype=np.float32)
    got = text_control(table, "mean", seed=0)
    assert np.array_equal(got, [[2, 4], [0, 0], [2, 4]])
    assert not text_control(np.zeros((2, 2), np.float32), "mean", seed=0).any()


def test_slim_random_text_fuses_the_seeded_random_codes(tiny, tmp_path):
    from slimrec.methods.slim import text_control

    data, item_text, user_text = tiny
    fit_method("slim-random-text", data, small(), tmp_path, item_text=item_text,
               user_text=user_text)  # fmt: skip
    fused = load_model(tmp_path).user_fusion.user_text.numpy()
    assert np.allclose(fused, text_control(user_text, "random", 0), atol=1e-6)
    assert not np.allclose(fused, user_text)


def test_zero_text_leaves_the_gate_shut_so_the_model_stays_the_plain_backbone(tiny, tmp_path):
    # g_l(0) is g_l's bias, zero at init, and the gate is zero: each one's gradient is the
    # other, so neither moves. The mean-text control is the no-information control that
    # can open the gate (a constant offset for every user).
    data, item_text, user_text = tiny
    for method in ("slim-zero-text", "slim-mean-text"):
        fit_method(method, data, small(), tmp_path / method, item_text=item_text,
                   user_text=user_text)  # fmt: skip
    zero = load_model(tmp_path / "slim-zero-text").user_fusion
    assert zero.gate.item() == 0.0 and not zero.g_l.bias.any()
    assert load_model(tmp_path / "slim-mean-text").user_fusion.gate.item() != 0.0


def test_the_history_control_is_the_mean_text_of_the_items_each_rationale_read():
    from slimrec.methods.slim import text_control

    items = np.array([[0, 0], [1, 0], [0, 1], [3, 4]], dtype=np.float32)  # row 0: padding
    table = np.array([[0, 2], [5, 0], [0, 0]], dtype=np.float32)  # user 2 has no rationale
    read = [np.array([1, 2]), np.array([3]), np.array([1])]
    got = text_control(table, "history", seed=0, item_text=items, read=read)
    assert np.allclose(got[0], np.sqrt(2) * np.array([1, 1]))  # mean of items 1, 2, norm 2
    assert np.allclose(got[1], [3, 4])  # item 3, at the rationale's norm 5
    assert not got[2].any()  # no rationale: no control text either
    with pytest.raises(ConfigError, match="same encoder"):
        text_control(table, "history", seed=0, item_text=items[:, :1], read=read)


def test_slim_history_text_fuses_the_titles_the_rationale_was_written_from(tiny, tmp_path):
    from slimrec.data.prepared import rationale_cutoff
    from slimrec.methods.slim import text_control

    data, item_text, user_text = tiny
    train = small(rationale_holdout=0, rationale_items=1)  # the prompt showed the last one
    fit_method("slim-history-text", data, train, tmp_path, item_text=item_text,
               user_text=user_text)  # fmt: skip
    histories, _ = data.split("train")
    before_cut = [h[: rationale_cutoff(len(h), 0)] for h in histories]
    assert max(map(len, before_cut)) > 1  # some user read fewer items than it trained on
    shown = [h[-1:] for h in before_cut]
    expected = text_control(user_text, "history", 0, item_text=item_text, read=shown)
    fused = load_model(tmp_path).user_fusion.user_text.numpy()
    assert np.allclose(fused, expected, atol=1e-6)
    whole = text_control(user_text, "history", 0, item_text=item_text, read=before_cut)
    assert not np.allclose(fused, whole) and not np.allclose(fused, user_text)


def test_only_the_history_control_asks_for_the_items_each_prompt_showed():
    assert get_method("slim-history-text").needs().items_read
    assert get_method("text-matching-history-text").needs().items_read
    assert not any(get_method(m).needs().items_read for m in ("slim", "slim-oracle-text"))


def test_the_oracle_control_gives_a_seeded_share_of_users_the_text_of_their_next_items():
    from slimrec.methods.slim import text_control

    items = np.array([[0, 0], [1, 0], [0, 1], [3, 4]], dtype=np.float32)  # row 0: padding
    table = np.array([[0, 2], [5, 0], [0, 0], [1, 1]], dtype=np.float32)  # user 2: no text
    future = [np.array([1, 2]), np.array([3]), np.array([1]), np.array([2])]
    got = text_control(table, "oracle", seed=0, item_text=items, future=future)
    assert np.allclose(got[0], np.sqrt(2) * np.array([1, 1]))  # mean of items 1, 2 at norm 2
    assert np.allclose(got[1], [3, 4])  # item 3 at the rationale's norm 5
    assert not got[2].any()  # no rationale: nothing to replace
    assert np.allclose(got[3], [0, np.sqrt(2)])
    third = [text_control(table, "oracle", seed=s, item_text=items, future=future, share=1 / 3)
             for s in range(8)]  # fmt: skip
    for part in third:  # one of the three users with text is replaced, the rest kept
        replaced = [u for u in (0, 1, 3) if not np.allclose(part[u], table[u])]
        assert len(replaced) == 1 and np.allclose(part[replaced[0]], got[replaced[0]])
        assert not part[2].any()
    assert len({tuple(map(tuple, p)) for p in third}) > 1  # which user depends on the seed
    with pytest.raises(ConfigError, match="outside"):
        text_control(table, "oracle", seed=0, item_text=items, future=future, share=0.0)


def test_an_oracle_share_without_the_oracle_control_is_refused():
    with pytest.raises(ConfigError, match="oracle_share"):
        get_method("slim", oracle_share=0.5)
    assert get_method("slim-oracle-text", oracle_share=0.5).config.oracle_share == 0.5


@pytest.mark.parametrize(
    ("name", "design"),
    [
        ("slim-oracle-text", "fast-gate"),
        ("slim-residual-oracle-text", "residual"),
        ("slim-gate-oracle-text", "gate"),
    ],
)
def test_the_oracle_controls_fuse_the_items_after_the_rationale_cut(tiny, tmp_path, name, design):
    from slimrec.data.prepared import rationale_cutoff
    from slimrec.methods.slim import text_control

    data, item_text, user_text = tiny
    fit_method(name, data, small(rationale_holdout=1), tmp_path,
               item_text=item_text, user_text=user_text)  # fmt: skip
    assert load_model(tmp_path).user_fusion.design == design
    future = [s[rationale_cutoff(len(s) - 2, 1) :] for s in data.sequences]
    assert all(len(f) == 3 and f[-1] == s[-1] for f, s in zip(future, data.sequences, strict=True))
    expected = text_control(user_text, "oracle", 0, item_text=item_text, future=future)
    fused = load_model(tmp_path).user_fusion.user_text.numpy()
    assert np.allclose(fused, expected, atol=1e-6)


@pytest.mark.parametrize("method", ["slim", "slim-concat", "slim-residual", "slim-gate"])
def test_a_run_folder_rebuilds_its_fusion_design(method, tiny, tmp_path):
    data, item_text, user_text = tiny
    fit_method(method, data, small(), tmp_path, item_text=item_text, user_text=user_text)
    model = load_model(tmp_path)
    assert model.user_fusion.design == get_method(method).config.fusion
    saved = json.loads((tmp_path / "structure.json").read_text())
    assert saved["fusion"] == model.user_fusion.design


def test_runs_from_before_structure_files_load_as_the_papers_fusion(tiny, tmp_path):
    data, item_text, user_text = tiny
    fit_method("slim-concat", data, small(), tmp_path, item_text=item_text, user_text=user_text)
    trained = load_model(tmp_path)
    (tmp_path / "structure.json").unlink()
    cfg = tmp_path / "config.yaml"
    cfg.write_text(cfg.read_text().replace("method: slim-concat", "method: slim"))
    old = load_model(tmp_path)  # "slim" meant the concat fusion then
    assert old.user_fusion.design == "concat"
    seqs, lengths = torch.tensor([[1, 2, 3]]), torch.tensor([3])
    users = torch.tensor([0])
    assert torch.equal(
        old.full_sort_predict(seqs, lengths, users), trained.full_sort_predict(seqs, lengths, users)
    )


@pytest.mark.parametrize("method", ["slim", "text-matching"])
def test_a_rationale_holdout_is_its_own_run(method, tiny, tmp_path):
    data, item_text, user_text = tiny
    kw = dict(item_text=item_text, user_text=user_text)
    leaky = fit_method(method, data, small(), tmp_path / "0", **kw)
    held = fit_method(method, data, small(rationale_holdout=1), tmp_path / "1", **kw)
    assert leaky["key"] != held["key"]
    assert "rationale_holdout" not in TrainConfig().model_dump()  # older run keys stay valid
