"""What SLIM's user-side fusion adds to a user vector: a constant, or something per user?

SLIM (Wang et al., WWW 2024, Sec. 3.3) adds ``delta_u = fusion(0, text_u)`` to the
sequence vector of user ``u`` (the fast gate: ``tanh(10 a) g_l(text_u)``) wherever the
rationale has not seen the target: the last training target(s), validation and test
(``slimrec.data.prepared.rationale_cutoff``). Its score for item ``i`` then gains
``delta_u . z_i``. Split ``delta_u`` into the mean over users ``c`` and the rest: ``c . z_i``
is one score per item, the same for everyone -- an item prior that only the end of each
sequence sees -- and the rest is what differs between users.

For every fit asked this prints the share of ``delta``'s energy in ``c``, how the item
prior ``c . z_i`` ranks items against how often they are the test target, how often
they are any training target and where in a history they tend to sit, and the test hit
rate of the prior's own top 10 beside the top 10 by training popularity and by popularity
among the last training targets. With ``--rescore``, each fit is tested again (both
protocols, NDCG@10) as trained, with every user's text replaced by the mean text (``g_l``
is affine, so the offset becomes exactly ``c`` for everyone: the constant alone) and with
zero text (no offset but ``g_l``'s bias): where the first equals the trained model, what
differs between users' rationales plays no part at test.

Usage:
    .venv/bin/python bench/text_offset.py bench/runs/amazon-games-teacher1000 \
        sasrec/slim sasrec/slim-mean-text --seed 0
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from slimrec.config import load_yaml
from slimrec.data import PreparedDataset
from slimrec.methods import load_model
from slimrec.methods.slim.tables import text_control, with_text_rows
from slimrec.pipeline.artifacts import RunArtifacts, recorded_fits
from slimrec.training import TrainConfig
from slimrec.training.trainer import model_scorer, split_metrics, test_eval_config


def fit_folder(run: Path, label: str, seed: int) -> Path:
    """The folder of the finished fit ``label`` (``sasrec/slim``) at ``seed``."""
    for fit in recorded_fits(run):
        if fit.label == label and fit.seed == seed:
            return fit.folder
    raise SystemExit(f"no finished fit {label} at seed {seed} in {run}")


def counts(targets: np.ndarray, n_items: int) -> np.ndarray:
    return np.bincount(targets, minlength=n_items + 1)[1:].astype(np.float64)


def hit_rate(top: np.ndarray, targets: np.ndarray) -> float:
    return float(np.isin(targets, top + 1).mean())


def rescored(model, data: PreparedDataset, cfg: TrainConfig) -> str:
    """Test NDCG@10 per protocol as trained, with mean text for all, with zero text."""
    fusion = model.user_fusion
    trained = fusion.user_text.clone()
    cells = []
    for control in (None, "mean", "zero"):
        table = trained if control is None else text_control(trained.numpy(), control, 0)
        name = "as trained" if control is None else f"{control} text"
        fusion.user_text.copy_(torch.as_tensor(table))
        for protocol in cfg.test_protocols:
            config = test_eval_config(cfg, protocol)
            values = split_metrics(model_scorer(model), data, "test", config, cfg.max_len)
            cells.append(f"{name} {protocol} {values['ndcg@10'].mean():.4f}")
    fusion.user_text.copy_(trained)
    return "; ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("fits", nargs="+", help="backbone/method, e.g. sasrec/slim")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rescore", action="store_true", help="test again with mean / zero text")
    args = ap.parse_args()
    data = PreparedDataset.load(RunArtifacts(args.run).data_dir)
    train, _ = data.split("train")
    _, test_targets = data.split("test")
    n = data.n_items
    train_pop = counts(np.concatenate([h[1:] for h in train]), n)
    last_pop = counts(np.array([h[-1] for h in train]), n)
    test_pop = counts(test_targets, n)
    # Where in a history an item tends to sit (0 oldest .. 1 newest): new releases sit late.
    position_sum = np.zeros(n + 1)
    for h in train:
        np.add.at(position_sum, h, np.arange(len(h)) / max(len(h) - 1, 1))
    occurrences = counts(np.concatenate(train), n)
    seen = occurrences > 0
    position = position_sum[1:] / np.maximum(occurrences, 1)
    print(f"{len(test_targets):,} test users, {n:,} items; item prior = c . z_i")
    popular = hit_rate(np.argsort(-train_pop)[:10], test_targets)
    print(f"top 10 by training popularity: test hit@10 {popular:.4f}")
    print(f"top 10 by last-training-target popularity: test hit@10 "
          f"{hit_rate(np.argsort(-last_pop)[:10], test_targets):.4f}")  # fmt: skip
    print(
        "fit | |c|^2 / mean |delta_u|^2 | gate tanh(10a) | rho(prior, test count) | "
        "rho(prior, training count) | rho(prior, position in history) | prior's top 10: "
        "test hit@10"
    )
    for name in args.fits:
        folder = fit_folder(args.run, name, args.seed)
        model = load_model(folder)
        fusion = model.user_fusion
        with torch.no_grad():
            text = fusion.user_text
            delta = fusion.fuse_text(torch.zeros(len(text), fusion.dim), text).numpy()
            items = model.item_encoder()[1:].numpy()
        delta = delta[with_text_rows(text.numpy())]
        c = delta.mean(axis=0)
        share = float(c @ c / np.mean(np.sum(delta**2, axis=1)))
        gate = (
            float(torch.tanh(fusion.gate_speed * fusion.gate.detach()))
            if hasattr(fusion, "gate")
            else float("nan")
        )
        prior = items @ c
        rho_test = spearmanr(prior, test_pop).statistic
        rho_train = spearmanr(prior, train_pop).statistic
        rho_position = spearmanr(prior[seen], position[seen]).statistic
        top = np.argsort(-prior)[:10]
        print(f"{name} | {share:.3f} | {gate:.3f} | {rho_test:+.3f} | {rho_train:+.3f} | "
              f"{rho_position:+.3f} | "
              f"{hit_rate(top, test_targets):.4f}")  # fmt: skip
        if args.rescore:
            cfg = load_yaml(TrainConfig, folder / "config.yaml")
            print(f"  test NDCG@10: {rescored(model, data, cfg)}")


if __name__ == "__main__":
    main()
