"""Train a backbone on a prepared dataset: seeded, early-stopped, resumable.

Each epoch trains once over every (history -> next item) pair of the training part
(see :mod:`slimrec.training.examples`), then scores the validation split by full
ranking. The best model by validation NDCG@10 is kept in ``best.pt``; ``last.pt`` holds
everything needed to resume (model, optimizer, RNG states, counters), written
atomically after every epoch, so a killed run continues from its last finished epoch and
ends exactly where an uninterrupted run would. Every epoch appends one line to
``metrics.jsonl``; the end writes ``results.json`` with the test metrics and
``test_per_user.npz`` with every user's (``{protocol}/{metric}``).

The trainer trains the model its :class:`~slimrec.training.recipe.ModelRecipe` builds (a
method's, or by default the plain ``config.backbone``) and knows no method. It passes the
user of every example and every evaluated history to the model, so a model that reads
user text (``reads_user_text``) gets it; with ``config.rationale_holdout = k`` that text
is used only in training pairs whose target it has not seen (see
:mod:`slimrec.training.examples`). The recipe's ``structure`` is saved beside ``best.pt``
in ``structure.json``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from slimrec.backbones import SequentialRecommender, build_backbone
from slimrec.config import config_hash, load_yaml, save_yaml
from slimrec.data.prepared import PreparedDataset
from slimrec.devices import pick_device
from slimrec.errors import ConfigError
from slimrec.eval import EvalConfig, per_user_metrics, summarize
from slimrec.eval.protocol import UserScoreFn
from slimrec.io import atomic_path, write_json_atomic
from slimrec.machine import set_torch_threads
from slimrec.progress import progress
from slimrec.training.config import TrainConfig, monitor_cutoff
from slimrec.training.examples import Examples, causal_examples, prefix_examples
from slimrec.training.recipe import ModelRecipe, backbone_options, backbone_recipe
from slimrec.training.resume import (
    WARM_RECORD,
    restore_rng,
    rng_state,
    stops_early,
    trim_metrics,
    warm_start,
)

STRUCTURE = "structure.json"
PER_USER = "test_per_user.npz"
MODEL_FILE = "best.pt"  # the weights of the best epoch: what every loader reads
# Settings a resumed run may change without invalidating its checkpoint.
RESUMABLE = ("epochs", "patience", "min_patience_steps", "threads", "device", "test_protocols")


class Trainer:
    """``Trainer(config, out).fit(data)`` trains, evaluates, and leaves artifacts in ``out``.

    ``recipe``: the model to train (default: ``config.backbone``, over ``text_emb``
    ``[n_items + 1, d]`` when it ends with "+"). ``warm_starts``: folders of other,
    finished runs a fresh ``out`` may go on from (:func:`~slimrec.training.resume.warm_start`:
    the same run with fewer epochs, another patience or other test protocols).
    """

    def __init__(
        self,
        config: TrainConfig,
        out: str | Path,
        recipe: ModelRecipe | None = None,
        *,
        text_emb: np.ndarray | None = None,
        warm_starts: Sequence[Path] = (),
    ):
        if recipe is not None and text_emb is not None:
            raise ValueError("text_emb belongs in the recipe when one is given")
        self.config = config
        self.out = Path(out)
        self.recipe = recipe or backbone_recipe(config, text_emb)
        self.warm_starts = tuple(Path(run) for run in warm_starts)

    # -- public ----------------------------------------------------------------------------

    def fit(self, data: PreparedDataset) -> dict[str, Any]:
        """Train (or resume, or reuse a finished run with the same inputs); return results."""
        cfg = self.config
        # The checkpoint key leaves out what may change between a run and its resumption
        # (more epochs, other threads); the results key covers everything.
        inputs: tuple[Any, ...] = (data.manifest()["stats"], data.options, *self.recipe.key)
        key = config_hash(_dump(cfg, exclude=set(RESUMABLE)), *inputs)
        results_key = config_hash(_dump(cfg), *inputs)
        results_path = self.out / "results.json"
        # Without its weights (a record committed from another machine) a finished run
        # is trained again: whoever asked for it here will load the model.
        if results_path.is_file() and (self.out / MODEL_FILE).is_file():
            done = json.loads(results_path.read_text())
            if done.get("key") == results_key:
                if not (self.out / PER_USER).is_file():  # a run from before they were kept
                    device = pick_device(cfg.device)
                    self.model_ = self.build_model(data).to(device)
                    best = torch.load(self.out / MODEL_FILE, map_location=device)
                    self.model_.load_state_dict(best)
                    self.model_.eval()
                    self.test(data)
                return done
        if monitor_cutoff(cfg.monitor) not in cfg.ks:  # before an epoch is spent on it
            raise ConfigError(
                f"monitor {cfg.monitor!r} is not among the validation metrics (ks {list(cfg.ks)})",
                where=self.out,
                fix="use a cut-off of ks, or add it to ks",
            )
        set_torch_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        device = pick_device(cfg.device)

        # Built before anything is written: a backbone, loss or device refused here
        # leaves no run folder behind.
        self.model_ = self.build_model(data).to(device)
        self.out.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, self.out / "config.yaml")
        write_json_atomic(self.out / STRUCTURE, dict(self.recipe.structure))
        optimizer = torch.optim.Adam(
            self.model_.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        state = {"epoch": 0, "best": -1.0, "best_epoch": -1, "bad_epochs": 0, "step": 0}
        state["best_step"] = 0
        last = self.out / "last.pt"
        if not last.is_file():
            (self.out / WARM_RECORD).unlink(missing_ok=True)  # of a start killed before last.pt
        if not last.is_file() and self.warm_starts:
            warm = warm_start(
                self.out,
                self.warm_starts,
                key,
                epochs=cfg.epochs,
                patience=cfg.patience,
                min_patience_steps=cfg.min_patience_steps,
            )
            if warm:
                tqdm.write(f"{self.out}: going on from {warm[0]} after epoch {warm[1] - 1}")
        if last.is_file():
            state = self._resume(last, key, optimizer)
        trim_metrics(self.out / "metrics.jsonl", state["epoch"])

        mode = self.layout()
        histories, _ = data.split("train")
        build = causal_examples if mode == "causal" else prefix_examples
        hold_out = cfg.rationale_holdout if self.model_.reads_user_text else 0
        examples = build(histories, cfg.max_len, hold_out)
        if hold_out and not self.model_.reads_history:
            examples = examples.only_fused()  # text is all it has: no leaky targets at all
        if cfg.pairs == "last":
            if mode != "prefix":
                raise ConfigError(
                    "pairs: last needs the prefix layout", where=self.out, fix="set layout: prefix"
                )
            examples = examples.last_per_user()
        if examples.n_pairs == 0:
            raise ConfigError(
                "no training pairs: every training sequence has a single item",
                where=self.out,
                fix="prepare the data with --min-seq-len 4 or more",
            )

        while state["epoch"] < cfg.epochs and not self._should_stop(state):
            epoch = state["epoch"]
            start = time.perf_counter()
            loss, steps = self._train_epoch(examples, optimizer, epoch, mode, device)
            train_s = time.perf_counter() - start
            valid = self.evaluate(
                data, "valid", EvalConfig(ks=cfg.ks, mask_history=cfg.mask_history)
            )
            eval_s = time.perf_counter() - start - train_s
            state["step"] = state.get("step", 0) + steps
            score = valid[cfg.monitor]
            improved = score > state["best"]
            if improved:
                state.update(best=score, best_epoch=epoch, bad_epochs=0, best_step=state["step"])
                with atomic_path(self.out / MODEL_FILE) as tmp:
                    torch.save(self.model_.state_dict(), tmp)
            else:
                state["bad_epochs"] += 1
            state["epoch"] = epoch + 1
            line = {"epoch": epoch, "loss": loss, "train_s": round(train_s, 3)}
            line |= {"eval_s": round(eval_s, 3), "layout": mode, "step": state["step"]}
            line |= {f"valid_{k}": v for k, v in valid.items()} | {"best": improved}
            with (self.out / "metrics.jsonl").open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
            for group in optimizer.param_groups:  # saved with it, so a resume goes on decayed
                group["lr"] *= cfg.lr_decay
            self._checkpoint(last, key, optimizer, state)
            tqdm.write(
                f"epoch {epoch}: loss {loss:.4f}  valid {cfg.monitor} {score:.4f}"
                f"{'  *' if improved else ''}  ({train_s:.1f} s train)"
            )

        self.model_.load_state_dict(torch.load(self.out / MODEL_FILE, map_location=device))
        test = self.test(data)
        results = {
            "key": results_key,
            "backbone": cfg.backbone,
            **({"method": cfg.method} if cfg.method else {}),
            "dataset": data.name,
            "seed": cfg.seed,
            "best_epoch": state["best_epoch"],
            "epochs_run": state["epoch"],
            "layout": mode,
            "valid": {cfg.monitor: state["best"]},
            "test": test,
        }
        if (self.out / WARM_RECORD).is_file():
            results["warm_start"] = json.loads((self.out / WARM_RECORD).read_text())
        write_json_atomic(results_path, results)
        return results

    def build_model(self, data: PreparedDataset) -> SequentialRecommender:
        """A fresh model of the recipe for ``data`` (not yet on the training device)."""
        return self.recipe.build(data)

    def layout(self) -> str:
        """The example layout: ``causal`` where the backbone supports it (auto), else prefix."""
        cfg = self.config
        # A fused user side trains causally too (see SequentialRecommender.sequence_loss).
        causal_ok = hasattr(self.model_, "sequence_output")
        if cfg.layout == "causal" and not causal_ok:
            raise ConfigError(
                f"backbone {cfg.backbone!r} cannot train with the causal layout",
                fix="use layout: prefix (or auto)",
            )
        if cfg.layout == "auto":
            return "causal" if causal_ok else "prefix"
        return cfg.layout

    def test(self, data: PreparedDataset) -> dict[str, dict[str, float]]:
        """Test metrics of the current model per protocol (see :func:`evaluate_test`)."""
        self.model_.eval()
        return evaluate_test(model_scorer(self.model_), data, self.config, self.out)

    def evaluate(self, data: PreparedDataset, split: str, config: EvalConfig) -> dict[str, float]:
        """Metrics of the current model on ``valid`` or ``test``."""
        return summarize(self.per_user(data, split, config), config.ks, data.n_users)

    @torch.inference_mode()
    def per_user(
        self, data: PreparedDataset, split: str, config: EvalConfig
    ) -> dict[str, np.ndarray]:
        """Every metric of the current model for every user of ``valid`` or ``test``."""
        self.model_.eval()
        return split_metrics(model_scorer(self.model_), data, split, config, self.config.max_len)

    # -- internals -------------------------------------------------------------------------

    def _should_stop(self, state: dict[str, Any]) -> bool:
        """Early stop (:func:`~slimrec.training.resume.stops_early`)."""
        cfg = self.config
        steps_since = state.get("step", 0) - state.get("best_step", 0)
        return stops_early(state["bad_epochs"], steps_since, cfg.patience, cfg.min_patience_steps)

    def _train_epoch(
        self, examples: Examples, optimizer: torch.optim.Optimizer, epoch: int, mode: str, device
    ) -> tuple[float, int]:
        """One pass over the examples: (mean loss per training pair, optimiser steps)."""
        cfg, model = self.config, self.model_
        model.train()
        # The order depends only on (seed, epoch): a resumed run sees the same batches.
        order = torch.randperm(
            len(examples), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        )
        total, count, steps = 0.0, 0, 0
        bar = progress(range(0, len(order), cfg.batch_size), desc=f"epoch {epoch}", leave=False)
        for start in bar:
            seqs, lengths, targets, users, fuse = (
                t.to(device) for t in examples.batch(order[start : start + cfg.batch_size])
            )
            if mode == "causal":
                loss = model.sequence_loss(seqs, lengths, targets, users, fuse)
            else:
                loss = model.loss(seqs, lengths, targets, users=users, fuse=fuse)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.clip_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad_norm)
            optimizer.step()
            steps += 1
            # Losses are means over pairs; a causal window holds many pairs, a prefix one.
            pairs = int((targets > 0).sum())
            total += loss.item() * pairs
            count += pairs
            bar.set_postfix(loss=f"{total / max(count, 1):.4f}", refresh=False)
        return total / max(count, 1), steps

    def _checkpoint(self, path: Path, key: str, optimizer, state: dict[str, Any]) -> None:
        with atomic_path(path) as tmp:
            torch.save(
                {
                    "key": key,
                    "state": state,
                    "model": self.model_.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": rng_state(),
                },
                tmp,
            )

    def _resume(self, path: Path, key: str, optimizer) -> dict[str, Any]:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        if ckpt.get("key") != key:
            raise ConfigError(
                "this folder holds a run with other settings or data",
                where=self.out,
                fix="use another --out, or delete the folder to start over",
            )
        self.model_.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        # Checkpoints from before the shared helper kept the CPU state alone.
        restore_rng(ckpt["rng"] if "rng" in ckpt else {"torch": ckpt["torch_rng"]})
        tqdm.write(f"resuming {self.out} after epoch {ckpt['state']['epoch'] - 1}")
        return ckpt["state"]


def load_trained(run: str | Path, *, device: str = "cpu") -> SequentialRecommender:
    """The best model of a finished or interrupted run of a plain backbone, in eval mode.

    Runs of a method (``method`` in their config) are loaded by that method:
    :func:`slimrec.methods.load_model`.
    """
    run = Path(run)
    if not (run / MODEL_FILE).is_file():
        raise ConfigError(
            f"no {MODEL_FILE}: not a trained run", where=run, fix="run `slimrec train`"
        )
    cfg = load_yaml(TrainConfig, run / "config.yaml")
    if cfg.method is not None:
        raise ConfigError(
            f"a run of method {cfg.method!r}",
            where=run,
            fix="load it with slimrec.methods.load_model",
        )
    return backbone_from_state(cfg, torch.load(run / MODEL_FILE, map_location=device), device)


def backbone_from_state(
    cfg: TrainConfig, state: dict[str, Any], device: str = "cpu"
) -> SequentialRecommender:
    """The backbone of ``cfg`` with the weights of ``state``, in eval mode; a state holding
    an item text table (a buffer of the "+" encoder) gives the "+" variant."""
    item_text = state.get("item_encoder.text_emb")
    n_items = state["item_encoder.id_embedding.weight"].shape[0] - 1
    name = cfg.backbone.removesuffix("+") + ("+" if item_text is not None else "")
    model = build_backbone(name, n_items, backbone_options(cfg), item_text)
    model.load_state_dict(state)
    return model.to(device).eval()


def _dump(cfg: TrainConfig, exclude: set[str] | None = None) -> dict[str, Any]:
    """The config as hashed into run keys; an unset ``method`` is left out, so the keys of
    plain backbone runs did not change when methods were added."""
    exclude = set(exclude or ()) | ({"method"} if cfg.method is None else set())
    return cfg.model_dump(mode="json", exclude=exclude)


@torch.inference_mode()
def split_metrics(
    score: UserScoreFn,
    data: PreparedDataset,
    split: str,
    config: EvalConfig,
    max_len: int,
    users: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of ``score`` for ``users`` (default all) of ``valid`` or ``test``."""
    histories, targets = data.split(split)  # type: ignore[arg-type]
    users = np.arange(len(histories)) if users is None else np.asarray(users)
    return per_user_metrics(
        score,
        [histories[u] for u in users],
        targets[users],
        data.n_items,
        config,
        # Popularity-weighted negatives follow training counts whatever split is scored.
        item_popularity=data.item_popularity("train"),
        max_history_len=max_len,
        users=users,
    )


def evaluate_test(
    score: UserScoreFn, data: PreparedDataset, cfg: TrainConfig, out: Path
) -> dict[str, dict[str, float]]:
    """Test metrics of ``score`` per protocol of ``cfg``; every user's go to ``out/PER_USER``
    (for paired comparisons between runs: the report's intervals)."""
    test, per_user = {}, {}
    for protocol in cfg.test_protocols:
        values = split_metrics(score, data, "test", test_eval_config(cfg, protocol), cfg.max_len)
        test[protocol] = summarize(values, cfg.ks, data.n_users)
        per_user |= {f"{protocol}/{name}": v for name, v in values.items()}
    with atomic_path(out / PER_USER) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **per_user)
    return test


def test_eval_config(cfg: TrainConfig, protocol: str) -> EvalConfig:
    """How a run of ``cfg`` is tested under ``protocol`` (also what re-scoring it uses)."""
    return EvalConfig(
        protocol=protocol,  # type: ignore[arg-type]
        ks=cfg.ks,
        seed=cfg.seed,
        mask_history=cfg.mask_history,
        n_negatives=cfg.sampled_negatives,
    )


def model_scorer(model: SequentialRecommender) -> UserScoreFn:
    """The evaluation's score function of ``model`` (right-padded histories, candidates or
    None for the whole catalog, the batch's users), scored on the model's device."""
    device = next(model.parameters()).device

    def score(seqs: torch.Tensor, candidates: torch.Tensor | None, users: torch.Tensor):
        seqs, users = seqs.to(device), users.to(device)
        lengths = (seqs > 0).sum(1).clamp(min=1)
        if candidates is None:
            return model.full_sort_predict(seqs, lengths, users).float().cpu()
        return model.predict(seqs, lengths, candidates.to(device), users).float().cpu()

    return score


def model_user_vectors(
    model: SequentialRecommender,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(histories [B, L], users [B]) -> [B, d]``: the user vectors ``model`` scores with."""
    device = next(model.parameters()).device

    def vectors(seqs: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        seqs, users = seqs.to(device), users.to(device)
        lengths = (seqs > 0).sum(1).clamp(min=1)
        return model.user_vectors(seqs, lengths, users).float().cpu()

    return vectors
