"""Train one RecBole 1.2.1 model on RecBole atomic files; print one JSON line of results.

Run inside RecBole's own venv (``bench/.venv-recbole``, see ``bench/recbole_venv.sh``) by
``bench/backbones.py``; never imported by slimrec. Uses RecBole's lower-level API
(``Config`` / ``create_dataset`` / ``data_preparation`` / ``get_model`` / ``get_trainer``)
because ``recbole.quick_start`` imports ray. The epoch loop is ours so that training and
validation are timed separately, but each step is RecBole's own: ``trainer._train_epoch``
and ``trainer._valid_epoch``; early stopping on valid NDCG@10 with ``stopping_step``
epochs of patience, then the best epoch's weights are tested with full ranking.

``--max-batches N`` stops every training epoch after N batches (for datasets where a
whole RecBole epoch does not fit the time budget); the output then also holds the number
of batches a whole epoch has, so the caller can extrapolate the epoch time.

Usage: python recbole_runner.py '<json settings>' (see ``main`` for the keys).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import os
import sys
import time

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, get_trainer, init_seed


def recbole_config(s: dict) -> dict:
    """RecBole settings matching slimrec's protocol (see bench/backbones.py)."""
    return {
        "data_path": s["data_path"],
        "checkpoint_dir": s["checkpoint_dir"],
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "eval_args": {
            "split": {"LS": "valid_and_test"},
            "order": "TO",
            "group_by": "user",
            "mode": "full",
        },
        "MAX_ITEM_LIST_LENGTH": s["max_len"],
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "train_batch_size": s["batch_size"],
        "eval_batch_size": 4096,
        "learning_rate": s["lr"],
        "metrics": ["NDCG", "Hit"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "stopping_step": s["patience"],
        "epochs": s["epochs"],
        "seed": s["seed"],
        "reproducibility": True,
        "use_gpu": False,
        "device": "cpu",
        "worker": 0,
        "show_progress": False,
        "state": "WARNING",
        **s.get("model_options", {}),
    }


def main() -> None:
    s = json.loads(sys.argv[1])
    torch.set_num_threads(s["threads"])
    config = Config(model=s["model"], dataset=s["dataset"], config_dict=recbole_config(s))
    init_seed(config["seed"], config["reproducibility"])
    logging.disable(logging.WARNING)
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    batches_per_epoch = len(train_data)
    max_batches = s.get("max_batches")

    epochs, best, best_epoch, best_state, bad = [], -1.0, -1, None, 0
    for epoch in range(s["epochs"]):
        start = time.perf_counter()
        data = train_data
        if max_batches and max_batches < batches_per_epoch:
            data = itertools.islice(train_data, max_batches)  # stops the epoch early
        loss = trainer._train_epoch(data, epoch)
        train_s = time.perf_counter() - start
        score, valid = trainer._valid_epoch(valid_data)
        eval_s = time.perf_counter() - start - train_s
        improved = score > best
        if improved:
            best, best_epoch, bad = score, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
        epochs.append(
            {
                "epoch": epoch,
                "loss": float(loss) / min(batches_per_epoch, max_batches or batches_per_epoch),
                "train_s": round(train_s, 3),
                "eval_s": round(eval_s, 3),
                "valid_ndcg@10": float(valid["ndcg@10"]),
            }
        )
        print(
            f"[recbole {s['model']}] epoch {epoch}: train {train_s:.1f} s, valid {eval_s:.1f} s,"
            f" valid ndcg@10 {score:.4f}{'  *' if improved else ''}",
            file=sys.stderr,
            flush=True,
        )
        if bad >= s["patience"]:
            break

    model.load_state_dict(best_state)
    start = time.perf_counter()
    test = trainer.evaluate(test_data, load_best_model=False)
    test_s = time.perf_counter() - start
    out = {
        "model": s["model"],
        "dataset": s["dataset"],
        "n_users": int(dataset.user_num - 1),
        "n_items": int(dataset.item_num - 1),
        "n_interactions": len(dataset.inter_feat),
        "train_rows": len(train_data._dataset),
        "batches_per_epoch": batches_per_epoch,
        "max_batches": max_batches,
        "best_epoch": best_epoch,
        "epochs_run": len(epochs),
        "epochs": epochs,
        "test_s": round(test_s, 3),
        "test": {"ndcg@10": float(test["ndcg@10"]), "hit@10": float(test["hit@10"])},
        "torch": torch.__version__,
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
