"""Distil the teacher's rationales into the student with LoRA: a plain, resumable loop.

``distill(rationales, config, out)`` fine-tunes LoRA adapters on the student base model
to minimise ``-log P(rationale | prompt)`` per rationale token (AdamW, linear warm-up,
gradient accumulation, length-bucketed right-padded batches), and after every epoch
measures the same loss on the held-out users' rationales. Artifacts in ``out``:

- ``adapter/``: the best adapter by validation loss (peft ``save_pretrained``, swapped in
  atomically), plus ``student.json`` naming its base model;
- ``last/``: the last finished epoch's adapter and ``state.pt`` (optimizer, RNG,
  counters), so a killed run resumes there and ends where an uninterrupted run would;
- ``metrics.jsonl`` (one line per epoch), ``config.yaml`` and ``results.json``.

A finished run with the same settings and data is reused; more ``epochs`` continue it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from slimrec.config import config_hash, save_yaml
from slimrec.devices import pick_device
from slimrec.errors import ConfigError
from slimrec.io import atomic_dir, sha256_file, write_json_atomic
from slimrec.llm.local import pick_autocast
from slimrec.machine import set_torch_threads
from slimrec.methods.slim.rationale_checks import repeated_lines
from slimrec.methods.slim.student.config import RESUMABLE, StudentConfig
from slimrec.methods.slim.student.lora import load_student, token_nll
from slimrec.methods.slim.student.sft_data import (
    Encoded,
    bucket_batches,
    collate,
    encode,
    end_token_id,
    load_rationales,
    split_users,
)
from slimrec.progress import progress
from slimrec.training.resume import restore_rng, rng_state, trim_metrics


def distill(rationales_path: str | Path, config: StudentConfig, out: str | Path) -> dict[str, Any]:
    """Train (or resume, or reuse) a student adapter; return the results dict."""
    threads = torch.get_num_threads()
    try:
        return _distill(rationales_path, config, Path(out))
    finally:  # the thread count is process-wide: leave it as it was
        torch.set_num_threads(threads)


def _distill(rationales_path: str | Path, cfg: StudentConfig, out: Path) -> dict[str, Any]:
    records = load_rationales(rationales_path, only_parsed=cfg.only_parsed)
    train_records, valid_records = split_users(records, cfg.valid_fraction, cfg.seed)
    if cfg.max_repeated_lines is not None:
        kept = [r for r in train_records if repeated_lines(r.rationale) <= cfg.max_repeated_lines]
        if not kept:
            raise ConfigError(
                f"every training rationale repeats more than {cfg.max_repeated_lines} lines",
                where=rationales_path,
                fix="raise max_repeated_lines or leave it unset",
            )
        tqdm.write(
            f"training on {len(kept)} of {len(train_records)} rationales "
            f"(at most {cfg.max_repeated_lines} repeated lines)"
        )
        train_records = kept
    data_hash = sha256_file(rationales_path)
    # The checkpoint key leaves out what a resumed run may change (more epochs, threads).
    key = config_hash(cfg.model_dump(mode="json", exclude=set(RESUMABLE)), data_hash)
    results_key = config_hash(cfg, data_hash)
    results_path = out / "results.json"
    if results_path.is_file():
        done = json.loads(results_path.read_text(encoding="utf-8"))
        if done.get("key") == results_key:
            return done
    set_torch_threads(cfg.threads)
    device = pick_device(cfg.device)
    tokenizer, model, _ = load_student(cfg, device)
    amp = pick_autocast(cfg.autocast, device)
    if amp is not None:
        tqdm.write(f"computing in {str(amp).removeprefix('torch.')} (autocast)")
    out.mkdir(parents=True, exist_ok=True)
    save_yaml(cfg, out / "config.yaml")
    pad_id = (
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    )
    end_id = end_token_id(tokenizer)
    train, valid = (
        [encode(tokenizer, r.messages, r.rationale, cfg.max_length, end_id) for r in part]
        for part in (train_records, valid_records)
    )

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state: dict[str, Any] = {"epoch": 0, "step": 0, "best": math.inf, "best_epoch": -1}
    state |= {"train_s": 0.0}
    last = out / "last"
    if (last / "state.pt").is_file():
        state = _resume(model, optimizer, last, key, device)
    else:
        state["valid_loss_base"] = _validate(model, valid, cfg.eval_batch_size, pad_id, amp)
        tqdm.write(f"validation loss of the base model: {state['valid_loss_base']:.4f}")
    trim_metrics(out / "metrics.jsonl", state["epoch"])

    while state["epoch"] < cfg.epochs:
        epoch = state["epoch"]
        start = time.perf_counter()
        loss, steps, tokens = _train_epoch(model, optimizer, train, cfg, epoch, state, pad_id, amp)
        train_s = time.perf_counter() - start
        valid_loss = _validate(model, valid, cfg.eval_batch_size, pad_id, amp)
        improved = valid_loss < state["best"]
        if improved:
            state.update(best=valid_loss, best_epoch=epoch)
            with atomic_dir(out / "adapter", overwrite=True) as tmp:
                model.save_pretrained(tmp)
                _portable_base(tmp / "adapter_config.json", cfg.base_model)
                info = {"base_model": cfg.base_model, "epoch": epoch}
                write_json_atomic(tmp / "student.json", info | {"valid_loss": valid_loss})
        line = {"epoch": epoch, "train_loss": loss, "valid_loss": valid_loss, "best": improved}
        line |= {"steps": steps, "step": state["step"], "tokens": tokens}
        line |= {"train_s": round(train_s, 3), "s_per_step": round(train_s / max(steps, 1), 4)}
        line |= {"autocast": str(amp).removeprefix("torch.") if amp else None}
        # Logged before the checkpoint: a resumed run drops lines of unfinished epochs.
        with (out / "metrics.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
        state["epoch"] = epoch + 1
        state["train_s"] += train_s
        _checkpoint(model, optimizer, last, key, state)
        tqdm.write(
            f"epoch {epoch}: train loss {loss:.4f}  valid loss {valid_loss:.4f}"
            f"{'  *' if improved else ''}  ({train_s:.1f} s)"
        )

    results = {
        "key": results_key,
        "base_model": cfg.base_model,
        "adapter": str(out / "adapter"),
        "best_epoch": state["best_epoch"],
        "valid_loss": state["best"],
        "valid_loss_base": state.get("valid_loss_base"),
        "epochs_run": state["epoch"],
        "steps": state["step"],
        "train_s": round(state["train_s"], 3),
        "n_train": len(train),
        "n_valid": len(valid),
        "n_train_users": len({r.user for r in train_records}),
        "n_valid_users": len({r.user for r in valid_records}),
        "trainable_params": sum(p.numel() for p in params),
        "autocast": str(amp).removeprefix("torch.") if amp else None,
    }
    write_json_atomic(results_path, results)
    return results


def _nll(model, tensors: dict[str, torch.Tensor], amp: torch.dtype | None):
    """``token_nll`` on the model's device, under autocast in ``amp`` if given. Autocast is
    entered per forward pass: it caches its low-precision copy of each weight until the
    context exits, so one context around many steps keeps computing with the LoRA weights
    of the first (zero: the adapter never acts)."""
    device = next(model.parameters()).device
    tensors = {k: v.to(device) for k, v in tensors.items()}
    if amp is None:
        return token_nll(model, tensors)
    with torch.autocast(device.type, dtype=amp):
        return token_nll(model, tensors)


def _train_epoch(
    model,
    optimizer,
    train: list[Encoded],
    cfg: StudentConfig,
    epoch: int,
    state,
    pad_id: int,
    amp: torch.dtype | None = None,
) -> tuple[float, int, int]:
    """One pass: (mean loss per rationale token, optimiser steps, supervised tokens)."""
    model.train()
    batches = bucket_batches([len(e.input_ids) for e in train], cfg.batch_size, cfg.seed, epoch)
    groups = [batches[i : i + cfg.grad_accum] for i in range(0, len(batches), cfg.grad_accum)]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    total, count = 0.0, 0
    bar = progress(groups, desc=f"epoch {epoch}", unit="step", leave=False)
    # Without a terminal the bar is off: a log still shows a line per tenth of the epoch.
    every = max(1, len(groups) // 10) if bar.disable else 0
    start = time.perf_counter()
    for done, group in enumerate(bar, 1):
        # Each step is the mean over the group's rationale tokens, however they are batched.
        n_group = sum(train[i].n_supervised for batch in group for i in batch)
        for batch in group:
            loss, n = _nll(model, collate([train[i] for i in batch], pad_id), amp)
            (loss / n_group).backward()
            total += loss.item()
            count += n
        if cfg.clip_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad_norm)
        warm = min(1.0, (state["step"] + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        for param_group in optimizer.param_groups:
            param_group["lr"] = cfg.lr * warm
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        state["step"] += 1
        bar.set_postfix(loss=f"{total / max(count, 1):.4f}", refresh=False)
        if every and (done % every == 0 or done == len(groups)):
            seconds = time.perf_counter() - start
            tqdm.write(
                f"epoch {epoch}: step {done}/{len(groups)}, loss {total / max(count, 1):.4f}, "
                f"{seconds / done:.1f} s a step"
            )
    return total / max(count, 1), len(groups), count


@torch.no_grad()
def _validate(
    model, examples: list[Encoded], batch_size: int, pad_id: int, amp: torch.dtype | None = None
) -> float:
    """Mean negative log-likelihood per rationale token of ``examples``."""
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: len(examples[i].input_ids))
    total, count = 0.0, 0
    for start in range(0, len(order), batch_size):
        tensors = collate([examples[i] for i in order[start : start + batch_size]], pad_id)
        loss, n = _nll(model, tensors, amp)
        total += loss.item()
        count += n
    return total / max(count, 1)


def _portable_base(config_file: Path, base_model: str) -> None:
    """Name the base as slimrec knows it -- a shipped name, a Hub id, a whole folder path
    -- not this machine's cache folder, so the adapter's record holds on another machine.
    (A shipped name is the de-quantised GGUF, not the upstream checkpoint: serve the
    merged model elsewhere, see llm/merge.py.)"""
    config = json.loads(config_file.read_text(encoding="utf-8"))
    folder = Path(base_model).expanduser()
    config["base_model_name_or_path"] = str(folder.resolve()) if folder.is_dir() else base_model
    write_json_atomic(config_file, config)


def _checkpoint(model, optimizer, last: Path, key: str, state: dict[str, Any]) -> None:
    with atomic_dir(last, overwrite=True) as tmp:
        model.save_pretrained(tmp)
        ckpt = {
            "key": key,
            "state": state,
            "optimizer": optimizer.state_dict(),
            "rng": rng_state(),
        }
        torch.save(ckpt, tmp / "state.pt")


def _resume(model, optimizer, last: Path, key: str, device) -> dict[str, Any]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    ckpt = torch.load(last / "state.pt", map_location="cpu", weights_only=False)
    if ckpt.get("key") != key:
        raise ConfigError(
            "this folder holds a distillation run with other settings or data",
            where=last.parent,
            fix="use another --out, or delete the folder to start over",
        )
    weights = load_file(last / "adapter_model.safetensors", device=str(device))
    set_peft_model_state_dict(model, weights)
    optimizer.load_state_dict(ckpt["optimizer"])
    restore_rng(ckpt["rng"])
    tqdm.write(f"resuming {last.parent} after epoch {ckpt['state']['epoch'] - 1}")
    return ckpt["state"]
