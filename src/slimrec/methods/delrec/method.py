"""DELRec as a registered method: SR patterns distilled into a soft prompt, then the LLM
tuned to pick the next item from a candidate list (Sun & Zhang, arXiv 2406.11156).

Its SR teacher is the run's own ``backbone`` fit on the same backbone and seed (trained
on the training part ``s[:-2]`` only; the pipeline trains it or reuses it). One fit runs,
each step resumable: the SR model's top-h after each user's training part
(``sr_top-<teacher key>.npy``), the stage-1 and stage-2 examples (built from the training part only,
seeded), stage 1 (in ``../delrec-distill-<key>/`` beside the fit folder, keyed by what
it reads, so the variants that share it distil once), stage 2 (``tune/``), then the test under the
sampled protocol with the run's number of negatives -- the candidate lists every other
method of the run is tested on -- and the SR teacher scored on those same lists beside
it (``results.json``: ``sr_same_candidates``). Full ranking does not apply: the
candidates are written in the prompt.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimrec.backbones import SequentialRecommender
from slimrec.config import config_hash, save_yaml
from slimrec.data import PreparedDataset
from slimrec.devices import pick_device
from slimrec.errors import ConfigError
from slimrec.eval import EvalConfig, summarize
from slimrec.io import atomic_path, write_json_atomic
from slimrec.llm.backends.hf import model_identity
from slimrec.llm.candidates import CandidateLM
from slimrec.llm.local import pick_dtype, resolve_base
from slimrec.machine import set_torch_threads
from slimrec.methods.base import FitContext, Method, Needs
from slimrec.methods.delrec.config import DelrecConfig
from slimrec.methods.delrec.examples import Example, lsr_example, rps_example, ta_example
from slimrec.methods.delrec.model import DelrecModel
from slimrec.methods.delrec.templates import TEMPLATE_VERSION, Templates, clean_title
from slimrec.methods.delrec.train import attach_lora, distill, tune
from slimrec.methods.fitting import STRUCTURE, check_backbone_options, trainer_config
from slimrec.methods.load import load_model
from slimrec.methods.recommend import recommend
from slimrec.training import TrainConfig
from slimrec.training.trainer import (
    MODEL_FILE,
    evaluate_test,
    model_scorer,
    split_metrics,
    test_eval_config,
)

TITLES = "titles.json"
ADAPTER = "adapter.pt"
RUNTIME = {"threads", "device", "epochs", "patience", "min_patience_steps"}
STAGE1_FIELDS = {"llm", "dtype", "prompt", "soft_prompt", "stage1", "scoring", "optimizer", "clip"}


class DelrecMethod(Method[DelrecConfig]):
    """See the module docstring."""

    config_cls = DelrecConfig
    ranks_catalogue = False

    def needs(self) -> Needs:
        return Needs(teacher="backbone")

    def check(self, train: TrainConfig) -> None:
        check_backbone_options(trainer_config(self.name, train))  # the SR teacher's options
        if "sampled" not in train.test_protocols:
            raise ConfigError(
                f"method {self.name!r} ranks the candidate list written in its prompt",
                fix="add `sampled` to eval.protocols (the paper: eval.negatives: 19)",
            )
        if train.sampled_negatives + 1 < 3:
            raise ConfigError(f"method {self.name!r} needs eval.negatives >= 2")

    def stage_inputs(self) -> dict[str, Any]:
        return {"template": TEMPLATE_VERSION}

    # -- fit -----------------------------------------------------------------------------------

    def fit(self, context: FitContext, out: Path) -> dict[str, Any]:
        if context.teacher is None:
            raise ConfigError(
                f"method {self.name!r} needs a trained SR teacher run (the 'backbone' fit)",
                fix="train it through `slimrec run`, or pass FitContext(teacher=...)",
            )
        data, c = context.data, self.config
        cfg = trainer_config(self.name, context.train).model_copy(
            update={"test_protocols": ("sampled",)}
        )
        teacher_dir = Path(context.teacher)
        teacher_key = json.loads((teacher_dir / "results.json").read_text())["key"]
        llm = resolve_base(c.llm)
        key_inputs = (data.manifest()["stats"], data.options)
        key = config_hash(
            *key_inputs,
            cfg.model_dump(mode="json", exclude=RUNTIME),
            c.model_dump(mode="json"),
            teacher_key,
            model_identity(str(llm)),
            TEMPLATE_VERSION,
        )
        results_path = out / "results.json"
        if results_path.is_file() and json.loads(results_path.read_text()).get("key") == key:
            return json.loads(results_path.read_text())
        out.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, out / "config.yaml")
        set_torch_threads(cfg.threads)
        seconds: dict[str, float] = {}
        start = time.perf_counter()
        sr_top = self.sr_top(teacher_dir, data, out / f"sr_top-{teacher_key[:16]}.npy")
        seconds["sr_top"] = round(time.perf_counter() - start, 1)

        titles = [clean_title(t, c.prompt) for t in data.titles()]
        write_json_atomic(out / TITLES, titles)
        model = self.build(llm, titles, cfg.backbone, cfg.seed, cfg.device)
        n_candidates = cfg.sampled_negatives + 1
        records: dict[str, Any] = {}
        if c.stage1.tasks and c.soft_prompt.n_tokens:
            tasks, valid = self.stage1_examples(data, sr_top, n_candidates, cfg.seed)
            # Keyed by what stage 1 reads alone, beside the fit: variants and stage-2
            # settings that share it (delrec, delrec-zero-shot) distil once.
            stage1_key = config_hash(
                key_inputs[:2],
                teacher_key,
                model_identity(str(llm)),
                TEMPLATE_VERSION,
                c.model_dump(mode="json", include=STAGE1_FIELDS),
                cfg.backbone,
                cfg.seed,
                n_candidates,
            )
            folder = out.parent / f"delrec-distill-{stage1_key}"
            records["distill"] = distill(model, tasks, valid, c, folder, cfg.seed)
            records["distill"]["folder"] = os.path.relpath(folder, out)
            seconds["distill"] = records["distill"]["seconds"]
        with atomic_path(out / MODEL_FILE) as tmp:
            torch.save(model.state_dict(), tmp)
        if c.stage2.adapter != "none":
            valid_users = self.subset(data.n_users, c.stage2.valid_users, cfg.seed, salt=3)
            valid_config = EvalConfig(
                protocol="sampled", ks=(5,), seed=cfg.seed, n_negatives=cfg.sampled_negatives
            )

            def validate() -> float:
                scores = split_metrics(
                    model_scorer(model), data, "valid", valid_config, cfg.max_len, valid_users
                )
                return float(np.mean(scores["ndcg@5"]))

            def examples_for_epoch(epoch: int) -> list[Example]:
                return self.stage2_examples(data, n_candidates, cfg.seed, epoch)

            records["tune"] = tune(model, examples_for_epoch, validate, c, out / "tune", cfg.seed)
            seconds["tune"] = records["tune"]["seconds"]
            from peft.utils import get_peft_model_state_dict

            with atomic_path(out / ADAPTER) as tmp:
                torch.save(get_peft_model_state_dict(model.lm.model), tmp)
        write_json_atomic(
            out / STRUCTURE,
            {
                "method": self.name,
                "config": c.model_dump(mode="json"),
                "teacher": os.path.relpath(teacher_dir, out),
                "backbone": cfg.backbone,
                "seed": cfg.seed,
                "template": TEMPLATE_VERSION,
                "total_steps": records.get("tune", {}).get("steps", 2),
            },
        )
        start = time.perf_counter()
        test = evaluate_test(model_scorer(model), data, cfg, out)
        seconds["test"] = round(time.perf_counter() - start, 1)
        teacher = load_model(teacher_dir)
        sr = split_metrics(
            model_scorer(teacher), data, "test", test_eval_config(cfg, "sampled"), cfg.max_len
        )
        tuned = records.get("tune", {})
        results = {
            "key": key,
            "backbone": cfg.backbone,
            "method": self.name,
            "dataset": data.name,
            "seed": cfg.seed,
            "best_epoch": tuned.get("best_epoch", -1),
            "epochs_run": tuned.get("epochs", 0),
            "layout": "prompt",
            "candidates": n_candidates,
            "valid": {"ndcg@5": tuned.get("valid")},
            "test": test,
            "sr_same_candidates": {"sampled": summarize(sr, cfg.ks, data.n_users)},
            "stages": {k: v for k, v in records.items()},
            "seconds": seconds,
        }
        write_json_atomic(results_path, results)
        return results

    # -- parts ---------------------------------------------------------------------------------

    def build(
        self, llm: Path, titles: list[str], backbone: str, seed: int, device: str = "cpu"
    ) -> DelrecModel:
        """The model with its initial (seeded) soft prompt over the frozen LLM."""
        c = self.config
        where = pick_device(device)
        lm = CandidateLM.load(llm, device=where, dtype=pick_dtype(c.dtype, where))
        templates = Templates(c.prompt, backbone, c.soft_prompt.n_tokens, titles)
        soft = initial_soft_prompt(lm, c.soft_prompt.n_tokens, c.soft_prompt.init, seed)
        model = DelrecModel(
            lm,
            templates,
            soft,
            scoring=c.scoring,
            history_items=c.prompt.history_items,
            seed=seed,
        )
        return model.to(where)

    def sr_top(self, teacher_dir: Path, data: PreparedDataset, path: Path) -> np.ndarray:
        """``[n_users, h]``: the SR model's top-h after each user's training part (kept in
        ``path``, named by the teacher run's key, so a retrained teacher is not reused)."""
        if path.is_file():
            return np.load(path)
        h = min(self.config.stage1.sr_top_h, data.n_items - 1)
        items, _ = recommend(teacher_dir, data, np.arange(data.n_users), k=h, history="valid")
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, items)
        return items

    @staticmethod
    def subset(n_users: int, size: int | None, seed: int, salt: int) -> np.ndarray:
        """A seeded subset of ``size`` users (all when ``size`` is None or larger)."""
        if size is None or size >= n_users:
            return np.arange(n_users)
        return np.sort(np.random.default_rng([seed, salt]).choice(n_users, size, replace=False))

    def stage1_examples(
        self, data: PreparedDataset, sr_top: np.ndarray, n_candidates: int, seed: int
    ) -> tuple[dict[str, list[Example]], dict[str, list[Example]]]:
        """TA and RPS examples for the stage-1 users, and for a disjoint validation set."""
        s, p = self.config.stage1, self.config.prompt
        train, _ = data.split("train")
        order = np.random.default_rng([seed, 1]).permutation(data.n_users)
        n_train = len(order) if s.users is None else min(s.users, len(order))
        n_valid = min(s.valid_users, max(1, len(order) - n_train))
        valid_users, train_users = order[:n_valid], order[n_valid : n_valid + n_train]

        def build(users: np.ndarray, salt: int) -> dict[str, list[Example]]:
            made: dict[str, list[Example]] = {t: [] for t in s.tasks}
            for u in users.tolist():
                rng = np.random.default_rng([seed, salt, u])
                top1 = int(sr_top[u, 0]) if s.ta_next == "sr" else None
                if "ta" in s.tasks:
                    ex = ta_example(
                        u, train[u], n_candidates, data.n_items, rng, history_items=p.history_items,
                        icl_length=s.icl_length, icl_back=s.icl_back, sr_top1=top1,
                    )  # fmt: skip
                    if ex is not None:
                        made["ta"].append(ex)
                if "rps" in s.tasks and (sr_top[u] > 0).all():
                    made["rps"].append(
                        rps_example(u, train[u], sr_top[u], n_candidates, data.n_items, rng,
                                    history_items=p.history_items)
                    )  # fmt: skip
            return made

        return build(train_users, 11), build(valid_users, 12)

    def stage2_examples(
        self, data: PreparedDataset, n_candidates: int, seed: int, epoch: int
    ) -> list[Example]:
        """Stage 2's ``T[:-1] -> T[-1]`` examples, negatives redrawn every epoch."""
        train, _ = data.split("train")
        users = self.subset(data.n_users, self.config.stage2.users, seed, salt=2)
        made = []
        for u in users.tolist():
            rng = np.random.default_rng([seed, 20, epoch, u])
            ex = lsr_example(
                u, train[u], n_candidates, data.n_items, rng,
                history_items=self.config.prompt.history_items,
            )  # fmt: skip
            if ex is not None:
                made.append(ex)
        return made

    # -- load ----------------------------------------------------------------------------------

    def load(self, folder: Path, *, device: str = "cpu") -> SequentialRecommender:
        saved = json.loads((folder / STRUCTURE).read_text())
        titles = json.loads((folder / TITLES).read_text())
        model = self.build(
            resolve_base(self.config.llm), titles, saved["backbone"], saved["seed"], device
        )
        model.load_state_dict(torch.load(folder / MODEL_FILE, map_location=model.soft.device))
        if (folder / ADAPTER).is_file():
            from peft import set_peft_model_state_dict

            attach_lora(model, self.config.stage2, saved["seed"], saved.get("total_steps", 2))
            set_peft_model_state_dict(model.lm.model, torch.load(folder / ADAPTER))
            model.lm.model.eval()
        return model.eval()


def initial_soft_prompt(lm: CandidateLM, n: int, init: str, seed: int) -> torch.Tensor:
    """``[n, d]`` initial soft prompt (see ``SoftPromptSettings.init``), seeded."""
    gen = torch.Generator().manual_seed(seed)
    weight = lm.embeddings.weight.detach().float().cpu()
    if init == "vocab":
        return weight[torch.randint(len(weight), (n,), generator=gen)].clone()
    std = 1.0 if init == "openprompt" else float(weight.std())
    return torch.randn(n, weight.shape[1], generator=gen) * std
