"""DELRec's two training stages, each resumable in its own folder.

Sun & Zhang, arXiv 2406.11156; ../shared/specs/delrec.md Sec. 3, 4 and 10.6, with the
released code's defects fixed (Sec. 8): clipping *before* the step, a schedule that ends
where training ends, adapters that actually reach the optimiser.

* Stage 1 (:func:`distill`): only the soft prompt P trains, the LLM frozen. Each step
  takes a batch of TA and a batch of RPS examples, one backward pass per task, and
  combines their gradients with the dynamic weights of :func:`.optim.task_weights`.
* Stage 2 (:func:`tune`): P frozen, LoRA adapters on the LLM's attention trained on
  "history + candidates -> next item"; the best epoch by validation NDCG@5 is kept.

Both use a listwise loss: cross-entropy over the C candidate scores of each prompt (the
authors' catalogue-wide verbaliser CE restricted to the candidates in the prompt).
``last.pt`` / ``last/`` is written after every step (stage 1) or epoch (stage 2), so a
killed stage continues where it stopped and ends where an uninterrupted one would.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from slimrec.io import atomic_path, write_json_atomic
from slimrec.methods.delrec.config import DelrecConfig, Stage1Settings, Stage2Settings
from slimrec.methods.delrec.examples import Example
from slimrec.methods.delrec.model import DelrecModel
from slimrec.methods.delrec.optim import Lion, linear_schedule, task_weights
from slimrec.progress import progress
from slimrec.training.resume import restore_rng, rng_state

DONE = "done.json"


def listwise_loss(model: DelrecModel, examples: Sequence[Example]) -> Tensor:
    """Mean cross-entropy of each example's answer among its candidates."""
    losses = []
    for example in examples:
        scores = model.example_scores(example)
        losses.append(
            torch.nn.functional.cross_entropy(
                scores[None], torch.tensor([example.target], device=scores.device)
            )
        )
    return torch.stack(losses).mean()


@torch.no_grad()
def hit_at_1(model: DelrecModel, examples: Sequence[Example]) -> float:
    """Share of examples whose answer scores highest (ties count as misses)."""
    if not examples:
        return float("nan")
    hits = 0
    for example in examples:
        scores = model.example_scores(example)
        best = scores.max()
        hits += int(scores[example.target] == best and int((scores == best).sum()) == 1)
    return hits / len(examples)


def _optimizer(config: DelrecConfig, params: list[Tensor], lr: float, weight_decay: float):
    if config.optimizer == "lion":
        return Lion(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _batches(n: int, size: int, seed: int, epoch: int) -> list[np.ndarray]:
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + size] for i in range(0, n, size)]


# -- stage 1 ----------------------------------------------------------------------------------


def distill(
    model: DelrecModel,
    tasks: dict[str, list[Example]],
    valid: dict[str, list[Example]],
    config: DelrecConfig,
    folder: Path,
    seed: int,
) -> dict[str, Any]:
    """Train P on the stage-1 tasks into ``folder`` (resumable); leaves the best P (by mean
    validation imitation HR@1) in the model and returns the stage's record."""
    s: Stage1Settings = config.stage1
    if (folder / DONE).is_file():
        model.soft.data = torch.load(folder / "soft_prompt.pt").to(model.soft.device)
        return json.loads((folder / DONE).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    names = [t for t in s.tasks if tasks.get(t)]
    steps_per_epoch = max(len(_batches(len(tasks[t]), s.batch_size, seed, 0)) for t in names)
    total = steps_per_epoch * s.epochs
    soft = model.soft
    soft.requires_grad_(True)
    optimizer = _optimizer(config, [soft], s.lr, s.weight_decay)
    schedule = linear_schedule(optimizer, s.warmup_steps, total)
    state: dict[str, Any] = {"step": 0, "best": -1.0, "history": []}
    last = folder / "last.pt"
    if not last.is_file():
        state["before"] = {t: hit_at_1(model, valid.get(t, [])) for t in names}
    else:
        saved = torch.load(last, weights_only=False)
        soft.data = saved["soft"]
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
        restore_rng(saved["rng"])
    start = time.perf_counter()
    with progress(total=total, initial=state["step"], desc="delrec stage 1", unit="step") as bar:
        while state["step"] < total:
            step = state["step"]
            epoch, at = divmod(step, steps_per_epoch)
            grads, losses = [], {}
            for t in names:
                batches = _batches(len(tasks[t]), s.batch_size, seed, epoch)
                batch = [tasks[t][i] for i in batches[at % len(batches)]]
                loss = listwise_loss(model, batch)
                (grad,) = torch.autograd.grad(loss, soft)
                grads.append(grad)
                losses[t] = float(loss.detach())
            norms = [float(g.norm()) for g in grads]
            weights = (
                task_weights(norms, s.alpha)
                if s.weighting == "dynamic"
                else [1 / len(grads)] * len(grads)
            )
            soft.grad = sum(w * g for w, g in zip(weights, grads, strict=True))  # type: ignore[assignment]
            torch.nn.utils.clip_grad_norm_([soft], config.clip)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            state["step"] = step + 1
            line = {"step": step, "loss": losses, "weights": dict(zip(names, weights, strict=True))}
            line["lr"] = schedule.get_last_lr()[0]
            if state["step"] % steps_per_epoch == 0:  # an epoch ended: validate, keep the best
                hits = {t: hit_at_1(model, valid.get(t, [])) for t in names}
                line["valid_hit@1"] = hits
                finite = [v for v in hits.values() if np.isfinite(v)]
                score = float(np.mean(finite)) if finite else 0.0
                if score > state["best"]:
                    state["best"] = score
                    with atomic_path(folder / "soft_prompt.pt") as tmp:
                        torch.save(soft.detach().clone(), tmp)
            state["history"].append(line)
            with atomic_path(last) as tmp:
                torch.save(
                    {"soft": soft.detach().clone(), "optimizer": optimizer.state_dict(),
                     "schedule": schedule.state_dict(), "state": state, "rng": rng_state()},
                    tmp,
                )  # fmt: skip
            bar.set_postfix({t: f"{v:.3f}" for t, v in losses.items()}, refresh=False)
            bar.update(1)
    soft.requires_grad_(False)
    soft.data = torch.load(folder / "soft_prompt.pt").to(soft.device)
    record = {
        "steps": total,
        "seconds": round(time.perf_counter() - start, 1),
        "valid_hit@1_before": state["before"],
        "valid_hit@1_after": state["history"][-1].get("valid_hit@1") if state["history"] else None,
        "examples": {t: len(tasks[t]) for t in names},
        "valid_examples": {t: len(valid.get(t, [])) for t in names},
    }
    with (folder / "metrics.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(line) + "\n" for line in state["history"])
    write_json_atomic(folder / DONE, record)
    last.unlink(missing_ok=True)
    return record


# -- stage 2 ----------------------------------------------------------------------------------


def attach_lora(
    model: DelrecModel, s: Stage2Settings, seed: int, total_steps: int = 1
) -> list[Tensor]:
    """Wrap the LLM in (Ada)LoRA adapters on the attention projections it has; their
    tensors. ``total_steps``: the optimiser steps AdaLoRA's rank budget is planned over."""
    from peft import AdaLoraConfig, LoraConfig, get_peft_model

    from slimrec.errors import ConfigError

    lm = model.lm
    names = {name.rsplit(".", 1)[-1] for name, _ in lm.model.named_modules()}
    targets = [t for t in s.target_modules if t in names]
    if not targets:
        raise ConfigError(
            f"none of the target modules {list(s.target_modules)} exist in the LLM",
            where="delrec.stage2.target_modules",
            fix="name its attention projections (q_proj/v_proj for Llama/Qwen, q/v for T5)",
        )
    torch.manual_seed(seed)
    common = {
        "lora_alpha": s.lora_alpha,
        "lora_dropout": s.lora_dropout,
        "target_modules": targets,
        "task_type": "SEQ_2_SEQ_LM" if lm.seq2seq else "CAUSAL_LM",
    }
    if s.adapter == "adalora":
        # peft refuses total_step=None since 2025; tinit + tfinal must leave room to prune.
        lora = AdaLoraConfig(
            init_r=s.adalora_init_r,
            target_r=s.lora_rank,
            tinit=min(s.adalora_tinit, max(0, total_steps - 2)),
            tfinal=min(s.adalora_tfinal, max(0, total_steps - 2 - s.adalora_tinit)),
            deltaT=s.adalora_delta_t,
            total_step=max(total_steps, 2),
            orth_reg_weight=s.adalora_orth_weight,
            **common,
        )
    else:
        lora = LoraConfig(r=s.lora_rank, **common)
    with warnings.catch_warnings():  # peft calls an API transformers 5 deprecates
        warnings.filterwarnings(
            "ignore", message=".*is_gradient_checkpointing", category=FutureWarning
        )
        lm.model = get_peft_model(lm.model, lora)
    trainable = [p for n, p in lm.model.named_parameters() if p.requires_grad]
    assert trainable and all(
        "lora_" in n for n, p in lm.model.named_parameters() if p.requires_grad
    ), "only adapter weights may train"
    return trainable


def tune(
    model: DelrecModel,
    examples_for_epoch: Callable[[int], list[Example]],
    validate: Callable[[], float],
    config: DelrecConfig,
    folder: Path,
    seed: int,
) -> dict[str, Any]:
    """Train LoRA adapters with P frozen into ``folder`` (resumable per epoch); leaves the
    best epoch's adapter (by ``validate()``, higher is better) in the model."""
    from peft import set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    s = config.stage2
    n_examples = len(examples_for_epoch(0))
    steps_per_epoch = len(_batches(n_examples, s.batch_size, seed, 0))
    params = attach_lora(model, s, seed, steps_per_epoch * s.epochs)
    lm = model.lm
    adalora = s.adapter == "adalora"
    if (folder / DONE).is_file():
        set_peft_model_state_dict(lm.model, torch.load(folder / "best_adapter.pt"))
        lm.model.eval()
        return json.loads((folder / DONE).read_text())
    folder.mkdir(parents=True, exist_ok=True)
    optimizer = _optimizer(config, params, s.lr, s.weight_decay)
    schedule = linear_schedule(optimizer, s.warmup_steps, steps_per_epoch * s.epochs)
    state: dict[str, Any] = {"epoch": 0, "best": -1.0, "best_epoch": -1, "history": []}
    last = folder / "last.pt"
    if last.is_file():
        saved = torch.load(last, weights_only=False)
        set_peft_model_state_dict(lm.model, saved["adapter"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        state = saved["state"]
        restore_rng(saved["rng"])
        if adalora:
            _allocator_state(lm.model, saved["allocator"])
    start = time.perf_counter()
    while state["epoch"] < s.epochs:
        epoch = state["epoch"]
        examples = examples_for_epoch(epoch)
        lm.model.train()
        total = 0.0
        batches = _batches(len(examples), s.batch_size, seed, epoch)
        for rows in progress(batches, desc=f"delrec stage 2, epoch {epoch}", unit="step"):
            loss = listwise_loss(model, [examples[i] for i in rows])
            objective = loss + s.adalora_orth_weight * orthogonality(lm.model) if adalora else loss
            objective.backward()
            torch.nn.utils.clip_grad_norm_(params, config.clip)
            optimizer.step()
            if adalora:  # after the step, before the gradients go (peft's contract)
                lm.model.base_model.update_and_allocate(int(schedule.last_epoch))
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            total += float(loss.detach())
        lm.model.eval()
        mean_loss = total / max(1, len(batches))
        score = validate()
        improved = score > state["best"]
        if improved:
            state.update(best=score, best_epoch=epoch)
            with atomic_path(folder / "best_adapter.pt") as tmp:
                torch.save(get_peft_model_state_dict(lm.model), tmp)
        state["history"].append(
            {"epoch": epoch, "loss": mean_loss, "valid": score, "best": improved}
        )
        state["epoch"] = epoch + 1
        with atomic_path(last) as tmp:
            torch.save(
                {"adapter": get_peft_model_state_dict(lm.model),
                 "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "state": state, "rng": rng_state(),
                 "allocator": _allocator_state(lm.model) if adalora else None},
                tmp,
            )  # fmt: skip
        tqdm.write(f"delrec stage 2, epoch {epoch}: loss {mean_loss:.4f}  valid {score:.4f}")
    set_peft_model_state_dict(lm.model, torch.load(folder / "best_adapter.pt"))
    lm.model.eval()
    record = {
        "epochs": s.epochs,
        "steps": steps_per_epoch * s.epochs,
        "best_epoch": state["best_epoch"],
        "valid": state["best"],
        "seconds": round(time.perf_counter() - start, 1),
        "examples": n_examples,
        "history": state["history"],
    }
    write_json_atomic(folder / DONE, record)
    last.unlink(missing_ok=True)
    return record


def orthogonality(peft_model) -> Tensor:
    """AdaLoRA's regulariser: mean ``||P P^T - I||_F`` over its left (A) and right (B)
    singular-vector matrices. peft adds it only when the model computes its own loss from
    labels; this loss is the method's own, so it is added here."""
    terms = []
    for name, p in peft_model.named_parameters():
        if p.requires_grad and ("lora_A" in name or "lora_B" in name):
            gram = p @ p.T if "lora_A" in name else p.T @ p
            eye = torch.eye(len(gram), device=gram.device, dtype=gram.dtype)
            terms.append(torch.linalg.matrix_norm(gram - eye))
    return torch.stack(terms).mean()


_ALLOCATOR = ("ipt", "exp_avg_ipt", "exp_avg_unc")


def _allocator_state(peft_model, state: dict | None = None) -> dict | None:
    """AdaLoRA's importance averages (read, or restored from ``state``): a resumed run
    prunes the ranks an uninterrupted one would."""
    allocator = peft_model.base_model.rankallocator
    if state is None:
        return {k: dict(getattr(allocator, k)) for k in _ALLOCATOR}
    for k in _ALLOCATOR:
        setattr(allocator, k, dict(state[k]))
    return None
