"""The trainer: learns a sequential pattern, early-stops, resumes exactly, refuses mixing runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from slimrec.backbones import SASRec, backbone_revision
from slimrec.data import PrepareConfig, PreparedDataset, RawDataset, prepare
from slimrec.errors import ConfigError
from slimrec.eval import EvalConfig
from slimrec.training import TrainConfig, Trainer, load_trained
from slimrec.training.examples import causal_examples, prefix_examples

N_ITEMS = 150


@pytest.fixture(scope="module")
def pattern_data() -> PreparedDataset:
    """Each user walks a fixed successor map from a random start: fully predictable."""
    rng = np.random.default_rng(0)
    successor = rng.permutation(N_ITEMS)
    rows = []
    for u in range(300):
        item = int(rng.integers(N_ITEMS))
        for t in range(int(rng.integers(6, 14))):
            rows.append((f"u{u}", f"i{item}", t))
            item = int(successor[item])
    raw = RawDataset.from_frames(
        pd.DataFrame(rows, columns=["user_id", "item_id", "order"]),
        None,
        name="pattern",
        source="mem",
    )
    return prepare(raw, PrepareConfig(user_core=0, item_core=0))


def small(**kw) -> TrainConfig:
    base = dict(model={"dim": 32}, epochs=6, batch_size=64, lr=5e-3, max_len=20, seed=0, threads=1)
    return TrainConfig(**(base | kw))


@pytest.mark.parametrize("backbone", ["sasrec", "gru4rec", "srgnn", "caser"])
def test_learns_the_pattern(backbone, pattern_data, tmp_path):
    trainer = Trainer(small(backbone=backbone, epochs=8), tmp_path)
    results = trainer.fit(pattern_data)
    trained = trainer.model_.eval()
    assert results["test"]["full"]["hit@10"] > 0.9
    # The kept checkpoint reloads into a model that scores exactly like the trained one.
    reloaded = load_trained(tmp_path)
    histories, _ = pattern_data.split("test")
    seqs = torch.tensor([list(h[-5:]) for h in histories[:8]])
    lengths = torch.full((8,), 5)
    assert torch.equal(
        reloaded.full_sort_predict(seqs, lengths), trained.full_sort_predict(seqs, lengths)
    )
    assert results["layout"] == ("prefix" if backbone in ("srgnn", "caser") else "causal")
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == results["epochs_run"] and "valid_ndcg@10" in json.loads(lines[0])
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "config.yaml").is_file()


@pytest.mark.parametrize("backbone", ["srgnn", "caser"])
def test_backbone_without_per_position_output_refuses_the_causal_layout(
    backbone, pattern_data, tmp_path
):
    with pytest.raises(ConfigError, match="causal layout"):
        Trainer(small(backbone=backbone, layout="causal"), tmp_path).fit(pattern_data)


def test_both_layouts_cover_the_same_pairs(pattern_data):
    histories, _ = pattern_data.split("train")
    prefix = prefix_examples(histories, max_len=5)
    causal = causal_examples(histories, max_len=5)
    assert prefix.n_pairs == causal.n_pairs == sum(len(h) - 1 for h in histories)
    assert sorted(prefix.targets.tolist()) == sorted(causal.targets[causal.targets > 0].tolist())


def test_resume_ends_exactly_where_an_uninterrupted_run_does(pattern_data, tmp_path):
    straight = Trainer(small(epochs=4, patience=100), tmp_path / "a")
    straight.fit(pattern_data)
    first = Trainer(small(epochs=2, patience=100), tmp_path / "b")
    first.fit(pattern_data)  # "killed" after epoch 2: last.pt is what survives
    resumed = Trainer(small(epochs=4, patience=100), tmp_path / "b")
    resumed.fit(pattern_data)
    for (name, a), b in zip(
        straight.model_.state_dict().items(), resumed.model_.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    assert len((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()) == 4


def test_the_learning_rate_decays_after_each_validation_and_a_resume_goes_on_decayed(
    pattern_data, tmp_path
):
    def lr_after(epochs: int, out: str) -> float:
        Trainer(small(epochs=epochs, patience=100, lr_decay=0.5), tmp_path / out).fit(pattern_data)
        ckpt = torch.load(tmp_path / out / "last.pt", weights_only=False)
        return ckpt["optimizer"]["param_groups"][0]["lr"]

    assert lr_after(3, "a") == pytest.approx(5e-3 * 0.5**3)
    assert lr_after(1, "b") == pytest.approx(5e-3 * 0.5)  # "killed" after one epoch
    assert lr_after(3, "b") == pytest.approx(5e-3 * 0.5**3)


def test_a_monitor_the_validation_does_not_report_is_refused_before_training(
    pattern_data, tmp_path
):
    with pytest.raises(ConfigError, match="monitor 'ndcg@5' is not among"):
        Trainer(small(monitor="ndcg@5"), tmp_path / "run").fit(pattern_data)
    assert not (tmp_path / "run").exists()


def test_finished_run_is_reused_and_other_settings_refused(pattern_data, tmp_path):
    cfg = small(epochs=2)
    first = Trainer(cfg, tmp_path).fit(pattern_data)
    again = Trainer(cfg, tmp_path)
    assert again.fit(pattern_data) == first and not hasattr(again, "model_")
    with pytest.raises(ConfigError, match="other settings"):
        Trainer(small(epochs=2, lr=1e-2), tmp_path).fit(pattern_data)


def test_new_backbone_revision_is_not_served_from_an_old_run(pattern_data, tmp_path, monkeypatch):
    """A changed default (revision) must not be served from a run of the old model."""
    first = Trainer(small(epochs=1), tmp_path / "a").fit(pattern_data)
    monkeypatch.setattr(SASRec, "revision", SASRec.revision + 1)
    again = Trainer(small(epochs=1), tmp_path / "a")
    with pytest.raises(ConfigError, match="other settings"):  # old checkpoint, new model
        again.fit(pattern_data)
    fresh = Trainer(small(epochs=1), tmp_path / "b").fit(pattern_data)
    assert fresh["test"] == first["test"]  # same weights: only the keys moved
    assert backbone_revision("SASRec+") == SASRec.revision and backbone_revision("gru4rec") == 1


def test_text_fused_backbone_trains(pattern_data, tmp_path):
    text = np.random.default_rng(1).normal(size=(pattern_data.n_items + 1, 16)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)  # like sentence embeddings
    text[0] = 0
    results = Trainer(small(backbone="sasrec+", epochs=8), tmp_path, text_emb=text).fit(
        pattern_data
    )
    assert results["test"]["full"]["hit@10"] > 0.9
    reloaded = load_trained(tmp_path)
    assert torch.equal(reloaded.item_encoder.text_emb[1:], torch.from_numpy(text[1:]))


def test_mask_history_off_ranks_history_items_in_validation_and_test(pattern_data, tmp_path):
    """RecBole's protocol for sequential models: history items stay in the full ranking."""
    assert "mask_history" not in TrainConfig().model_dump()  # earlier run keys stay valid
    assert TrainConfig(mask_history=False).model_dump()["mask_history"] is False
    results = {}
    for mask in (True, False):
        trainer = Trainer(small(epochs=1, mask_history=mask), tmp_path / str(mask))
        results[mask] = trainer.fit(pattern_data)
        line = json.loads((tmp_path / str(mask) / "metrics.jsonl").read_text())
        for split in ("valid", "test"):
            expected = trainer.evaluate(
                pattern_data, split, EvalConfig(ks=(10, 20), mask_history=mask)
            )
            got = line if split == "valid" else results[mask]["test"]["full"]
            key = "valid_ndcg@10" if split == "valid" else "ndcg@10"
            assert got[key] == pytest.approx(expected["ndcg@10"])
    # Same seed, same weights: only the protocol differs, and unmasked is harder.
    assert results[False]["test"]["full"]["ndcg@10"] < results[True]["test"]["full"]["ndcg@10"]


def test_per_user_test_metrics_are_saved_and_average_to_the_results(pattern_data, tmp_path):
    """Paired comparisons between runs read every user's test metric from the run folder."""
    results = Trainer(small(epochs=1), tmp_path).fit(pattern_data)
    per_user = np.load(tmp_path / "test_per_user.npz")
    for protocol in ("full", "sampled"):
        values = per_user[f"{protocol}/ndcg@10"]
        assert values.shape == (pattern_data.n_users,)
        assert float(torch.from_numpy(values).mean()) == results["test"][protocol]["ndcg@10"]


def test_a_finished_run_without_per_user_metrics_gets_them_without_training(pattern_data, tmp_path):
    first = Trainer(small(epochs=1), tmp_path).fit(pattern_data)
    kept = np.load(tmp_path / "test_per_user.npz")["full/ndcg@10"]
    (tmp_path / "test_per_user.npz").unlink()
    lines = (tmp_path / "metrics.jsonl").read_text()
    again = Trainer(small(epochs=1), tmp_path).fit(pattern_data)
    assert again == first and (tmp_path / "metrics.jsonl").read_text() == lines
    assert np.array_equal(np.load(tmp_path / "test_per_user.npz")["full/ndcg@10"], kept)


def test_epochs_logged_after_the_last_checkpoint_are_dropped_on_resume(pattern_data, tmp_path):
    """A run killed between its metrics line and its checkpoint logs that epoch once."""
    Trainer(small(epochs=2, patience=100), tmp_path).fit(pattern_data)
    log = tmp_path / "metrics.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([*lines, lines[-1].replace('"epoch": 1', '"epoch": 2')]) + "\n")
    Trainer(small(epochs=4, patience=100), tmp_path).fit(pattern_data)
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == [0, 1, 2, 3]


def test_trains_the_model_its_recipe_builds_and_saves_its_structure(pattern_data, tmp_path):
    from slimrec.backbones import build_backbone
    from slimrec.training import ModelRecipe

    built = []

    def build(data):
        built.append(data.n_items)
        return build_backbone("gru4rec", data.n_items, {"dim": 16})

    recipe = ModelRecipe(build, key=("my-gru",), structure={"method": None, "kind": "gru"})
    trainer = Trainer(small(epochs=1), tmp_path / "a", recipe)  # the config says sasrec
    first = trainer.fit(pattern_data)
    assert type(trainer.model_).__name__ == "GRU4Rec" and built == [pattern_data.n_items]
    saved = json.loads((tmp_path / "a" / "structure.json").read_text())
    assert saved == {"method": None, "kind": "gru"}
    # The recipe's key is part of the run's identity.
    other = Trainer(small(epochs=1), tmp_path / "b", ModelRecipe(build, key=("other",)))
    assert other.fit(pattern_data)["key"] != first["key"]
    with pytest.raises(ValueError, match="recipe"):
        Trainer(small(), tmp_path, recipe, text_emb=np.zeros((3, 2)))


def test_the_sampled_protocol_draws_the_configured_number_of_negatives(pattern_data, tmp_path):
    results = Trainer(small(epochs=1, sampled_negatives=5), tmp_path).fit(pattern_data)
    # Six candidates: the target is always within the top 10.
    assert results["test"]["sampled"]["hit@10"] == 1.0
    assert results["test"]["full"]["hit@10"] < 1.0


def test_a_longer_run_goes_on_from_a_shorter_one_and_ends_where_a_fresh_one_does(
    pattern_data, tmp_path
):
    fresh = Trainer(small(epochs=4, patience=100), tmp_path / "fresh").fit(pattern_data)
    Trainer(small(epochs=2, patience=100), tmp_path / "short").fit(pattern_data)
    longer = Trainer(
        small(epochs=4, patience=100), tmp_path / "long", warm_starts=[tmp_path / "short"]
    )
    results = longer.fit(pattern_data)
    assert results["warm_start"] == {"from": "short", "epochs": 2}
    assert results["test"] == fresh["test"] and results["epochs_run"] == 4
    short_lines = (tmp_path / "short" / "metrics.jsonl").read_text().splitlines()
    long_lines = (tmp_path / "long" / "metrics.jsonl").read_text().splitlines()
    assert len(long_lines) == 4 and long_lines[:2] == short_lines
    assert (tmp_path / "short" / "results.json").is_file()  # the shorter run is left as it was
    # Killed after the warm start and resumed: the record still says where it came from.
    (tmp_path / "long" / "results.json").unlink()
    again = Trainer(
        small(epochs=5, patience=100), tmp_path / "long", warm_starts=[tmp_path / "short"]
    )
    assert again.fit(pattern_data)["warm_start"] == {"from": "short", "epochs": 2}


def test_no_warm_start_from_a_run_of_other_settings_or_one_it_would_not_have_reached(
    pattern_data, tmp_path
):
    Trainer(small(epochs=3, patience=100), tmp_path / "three").fit(pattern_data)
    Trainer(small(epochs=2, patience=100, lr=1e-2), tmp_path / "other-lr").fit(pattern_data)
    # Fewer epochs than the candidates ran, or other settings: trained from scratch.
    cold = Trainer(
        small(epochs=2, patience=100),
        tmp_path / "two",
        warm_starts=[tmp_path / "three", tmp_path / "other-lr"],
    )
    assert "warm_start" not in cold.fit(pattern_data)
    # A candidate that logged an epoch where this patience would have stopped is skipped.
    lines = [json.loads(x) for x in (tmp_path / "three" / "metrics.jsonl").read_text().splitlines()]
    for line in lines[:2]:
        line["best"] = line["epoch"] == 0  # epoch 1 "did not improve"
    (tmp_path / "three" / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    impatient = small(epochs=5, patience=1, min_patience_steps=0)
    run = Trainer(impatient, tmp_path / "five", warm_starts=[tmp_path / "three"])
    assert "warm_start" not in run.fit(pattern_data)
    patient = Trainer(
        small(epochs=5, patience=100), tmp_path / "p", warm_starts=[tmp_path / "three"]
    )
    assert patient.fit(pattern_data)["warm_start"] == {"from": "three", "epochs": 3}


def test_another_test_protocol_reuses_the_trained_model_without_training_again(
    pattern_data, tmp_path
):
    first = Trainer(small(epochs=2, test_protocols=["full"]), tmp_path / "a").fit(pattern_data)
    both = small(epochs=2, test_protocols=["full", "sampled"])
    results = Trainer(both, tmp_path / "b", warm_starts=[tmp_path / "a"]).fit(pattern_data)
    assert results["warm_start"]["epochs"] == 2 and results["epochs_run"] == 2
    assert results["test"]["full"] == first["test"]["full"] and "sampled" in results["test"]
    assert (tmp_path / "b" / "metrics.jsonl").read_text() == (
        tmp_path / "a" / "metrics.jsonl"
    ).read_text()
