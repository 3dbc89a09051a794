"""Train one RecBole 1.2.1 model on RecBole atomic files; print one JSON line of results.

Run inside RecBole's own venv (``bench/.venv-recbole``, see ``bench/recbole_venv.sh``) by
``bench/backbones.py``; never imported by slimrec. Uses RecBole's lower-level API
(``Config`` / ``create_dataset`` / ``data_preparation`` / ``get_model`` / ``get_trainer``)
because ``recbole.quick_start`` imports ray. The epoch loop is ours so that training and
validation are timed separately, but each step is RecBole's own: ``trainer._train_epoch``
and ``trainer._valid_epoch``; early stopping on valid NDCG@10 with ``stopping_step``
epochs of patience, then the best epoch's weights are tested with full ranking.

Scoring: RecBole 1.2.1 does NOT mask a user's history items in full ranking for
sequential models (its ``FullSortEvalDataLoader`` passes no history index when
``MODEL_TYPE`` is sequential; only the padding item 0 is masked). slimrec masks them by
default (never the target). So the runner also scores RecBole's model itself under both
protocols, ``unmasked`` (must equal RecBole's own evaluator: a check of this code) and
``masked`` (slimrec's default), with the expected rank on ties as slimrec does; ``select``
says which validation score picks the best epoch (``native``: RecBole's own evaluator;
``masked``: ours with the history masked).

``--max-batches N`` stops every training epoch after N batches (for datasets where a
whole RecBole epoch does not fit the time budget); the output then also holds the number
of batches a whole epoch has, so the caller can extrapolate the epoch time.
``time_budget_s`` instead stops after the first whole epoch that ends past that many
seconds (``stopped`` says which limit ended training). ``device``: ``cpu`` or ``cuda``.

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

import numpy as np
import torch

# RecBole 1.2.1's Config assigns np.float_ / np.complex_ / np.unicode_, which numpy 2
# removed; restore them as aliases so the same runner works on a numpy-2 image (the GPU
# machine's). They name the same types numpy 1 did.
for _old, _new in (("float_", "float64"), ("complex_", "complex128"), ("unicode_", "str_")):
    if not hasattr(np, _old):
        setattr(np, _old, getattr(np, _new))

from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.utils import get_model, get_trainer, init_seed  # noqa: E402


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
        "use_gpu": s.get("device", "cpu") != "cpu",
        "gpu_id": "0",
        "worker": 0,
        "show_progress": False,
        "state": "WARNING",
        **s.get("model_options", {}),
    }


def full_histories(dataset, atomic_file: str) -> dict[int, np.ndarray]:
    """Each user's whole item sequence in RecBole's internal ids, from the atomic file.

    The model input holds only the last ``max_len`` items; masking needs all of them.
    """
    seqs: dict[str, list[tuple[float, str]]] = {}
    with open(atomic_file, encoding="utf-8") as f:
        next(f)
        for line in f:
            user, item, t = line.rstrip("\n").split("\t")
            seqs.setdefault(user, []).append((float(t), item))
    out = {}
    for user, rows in seqs.items():
        items = [item for _, item in sorted(rows)]
        uid = int(dataset.token2id(dataset.uid_field, user))
        out[uid] = np.asarray(dataset.token2id(dataset.iid_field, items), dtype=np.int64)
    return out


@torch.no_grad()
def own_metrics(model, loader, histories, offset: int, mask: bool, k: int = 10) -> dict:
    """NDCG@k / Hit@k of one target per user, scored like slimrec's evaluator.

    ``offset``: the target's index from the end of the user's sequence (2 valid, 1 test);
    the history is everything before it. Ties count at their expected rank.
    """
    model.eval()
    device = next(model.parameters()).device
    ndcg, hit, n = 0.0, 0.0, 0
    for interaction, _, _, positive_i in loader:
        interaction, positive_i = interaction.to(device), positive_i.to(device)
        scores = model.full_sort_predict(interaction).view(len(positive_i), -1).clone()
        target = scores.gather(1, positive_i.view(-1, 1))
        scores[:, 0] = float("-inf")
        if mask:
            for row, uid in enumerate(interaction[model.USER_ID].tolist()):
                seq = histories[uid]
                history = torch.from_numpy(seq[: len(seq) - offset]).to(device)
                scores[row, history] = float("-inf")
        scores.scatter_(1, positive_i.view(-1, 1), target)
        greater = (scores > target).sum(1).double()
        ties = ((scores == target).sum(1) - 1).double()
        for g, e in zip(greater.tolist(), ties.tolist(), strict=True):
            # rank uniform on g+1 .. g+e+1; expected gain over that range, ranks > k gain 0
            ranks = np.arange(g + 1, g + e + 2)
            inside = ranks[ranks <= k]
            ndcg += float((1.0 / np.log2(inside + 1)).sum()) / (e + 1)
            hit += len(inside) / (e + 1)
        n += len(positive_i)
    return {"ndcg@10": ndcg / n, "hit@10": hit / n}


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
    select = s.get("select", "native")
    atomic = os.path.join(s["data_path"], s["dataset"], f"{s['dataset']}.inter")
    histories = full_histories(dataset, atomic)

    budget = s.get("time_budget_s")
    stopped = "epochs"
    started = time.perf_counter()
    epochs, best, best_epoch, best_state, bad = [], -1.0, -1, None, 0
    for epoch in range(s["epochs"]):
        start = time.perf_counter()
        data = train_data
        if max_batches and max_batches < batches_per_epoch:
            data = itertools.islice(train_data, max_batches)  # stops the epoch early
        loss = trainer._train_epoch(data, epoch)
        train_s = time.perf_counter() - start
        if select == "masked":
            valid = own_metrics(model, valid_data, histories, offset=2, mask=True)
            score = valid["ndcg@10"]
        else:
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
            stopped = "patience"
            break
        if budget and time.perf_counter() - started > budget:
            stopped = "time budget"
            break

    model.load_state_dict(best_state)
    start = time.perf_counter()
    test = trainer.evaluate(test_data, load_best_model=False)
    test_s = time.perf_counter() - start
    protocols = {
        "unmasked": own_metrics(model, test_data, histories, offset=1, mask=False),
        "masked": own_metrics(model, test_data, histories, offset=1, mask=True),
    }
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
        "stopped": stopped,
        "device": str(config["device"]),
        "test_s": round(test_s, 3),
        "select": select,
        "test_native": {"ndcg@10": float(test["ndcg@10"]), "hit@10": float(test["hit@10"])},
        "test_protocols": protocols,
        # RecBole's evaluator rounds to 4 digits and breaks ties by topk order: tiny at most.
        "own_vs_native_unmasked": max(
            abs(protocols["unmasked"][k] - float(test[k])) for k in ("ndcg@10", "hit@10")
        ),
        "test": protocols["masked" if select == "masked" else "unmasked"],
        "torch": torch.__version__,
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
