"""Side-by-side benchmark: slimrec's SASRec / GRU4Rec against RecBole 1.2.1's (issue 3).

What: on the SAME prepared data and protocol, train our backbones and RecBole's and print,
in one run, wall time per epoch (training only, and training + validation), the total time
to the end of training, and test NDCG@10 / Hit@10 with full ranking. Writes a Markdown
table and a JSON file of every number (``--out``).

Why: the issue asks that our backbones match RecBole's quality and be at least 1.5x
faster per epoch on a small CPU machine. Timings on a shared machine are noisy, so both
sides are always measured in the same run and compared as ratios.

Protocol, identical on both sides:

* data: ``slimrec data prepare`` (5-core, ``--drop-repeats`` for amazon-office), exported
  to a RecBole atomic ``.inter`` file with ``timestamp`` = position in the user's
  sequence and RecBole's own filtering switched off, so RecBole sees our sequences;
* leave-one-out: train ``s[:-2]``, valid ``s[-2]``, test ``s[-1]``; training pairs are
  every (prefix -> next item) of ``s[:-2]`` with history cut to 50 (RecBole's prefix
  augmentation); CE loss over the catalog, Adam lr 1e-3, batch 256, 2 torch threads;
* full ranking; early stopping on valid NDCG@10. RecBole 1.2.1 does not mask a user's
  history items in full ranking for sequential models, slimrec does by default (never
  the target). ``--protocol`` picks the validation score that selects the best epoch on
  BOTH sides (``masked``: ours; ``unmasked``: RecBole's), and every run reports its
  test metrics under both protocols, each side scoring its model itself (the RecBole
  runner checks its unmasked score against RecBole's own evaluator).

Our trainer's default ("causal") layout computes the same pairs per epoch in windows of
50 positions, one forward per window: far less work per epoch, but also ~max_len times
fewer optimizer steps, so epochs are not equal units of progress. Hence we report
per-epoch time, total time to convergence and quality at convergence separately, and
optionally (``--prefix``) our trainer in the "prefix" layout, which takes exactly
RecBole's steps per epoch.

On big data (``BIG``: ml-1m, amazon-games) a whole RecBole epoch does not fit a short
budget: ``--max-batches`` stops RecBole's (and our prefix layout's) epochs after N
batches; their per-epoch time is then extrapolated to the full epoch (marked ``~``) and
their test metrics are those after that partial training, for what they are.

Usage:
    .venv/bin/python bench/backbones.py --datasets amazon-office ml-1m --prefix
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimrec.data.prepared import PreparedDataset, is_prepared
from slimrec.eval import EvalConfig
from slimrec.machine import hardware
from slimrec.training import TrainConfig, Trainer
from slimrec.training.examples import Examples, prefix_examples

BENCH = Path(__file__).resolve().parent
# Another interpreter (e.g. a GPU image's python3 with RecBole on PYTHONPATH) via the env.
RECBOLE_PYTHON = Path(
    os.environ.get("RECBOLE_PYTHON", BENCH / ".venv-recbole" / "bin" / "python")
).absolute()  # not resolve(): a venv's python is a symlink that must stay one
RECBOLE_RUNNER = BENCH / "recbole_runner.py"
RECBOLE_MODELS = {"sasrec": "SASRec", "gru4rec": "GRU4Rec"}
# RecBole's SASRec defaults to dropout 0.5; ours (the paper's) is 0.2. Use 0.2 on both
# sides so the comparison is about the implementations. GRU4Rec defaults already agree.
RECBOLE_OPTIONS = {
    "sasrec": {"hidden_dropout_prob": 0.2, "attn_dropout_prob": 0.2},
    "gru4rec": {},
}
PREPARE_ARGS = {"amazon-office": ["--drop-repeats"], "ml-1m": [], "amazon-games": []}
# Too big for whole RecBole epochs on 2 cores: --max-batches and the --ml1m-* caps apply.
BIG = {"ml-1m", "amazon-games"}


# -- data -------------------------------------------------------------------------------


def prepare(name: str, work: Path) -> PreparedDataset:
    """Prepare ``name`` with slimrec's CLI (once) and load it."""
    out = work / "prepared" / name
    if not is_prepared(out):
        cli = Path(sys.executable).parent / "slimrec"
        cmd = [str(cli), "data", "prepare", "--dataset", name, "--out", str(out), "--force"]
        subprocess.run(cmd + PREPARE_ARGS.get(name, []), check=True)
    return PreparedDataset.load(out)


def repeats(data: PreparedDataset) -> dict[str, int]:
    """Users whose valid / test target already occurs in their history.

    Reported for context: with the history masked (both sides, ``--protocol masked``) such a
    target stays rankable, since neither side masks the target itself.
    """
    counts = {}
    for split in ("valid", "test"):
        histories, targets = data.split(split)  # type: ignore[arg-type]
        counts[split] = int(
            sum(t in set(h.tolist()) for h, t in zip(histories, targets, strict=True))
        )
    return counts


def export_atomic(data: PreparedDataset, root: Path) -> Path:
    """Write ``root/<name>/<name>.inter`` (RecBole atomic file) from our sequences."""
    folder = root / data.name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data.name}.inter"
    with path.open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for user, seq in enumerate(data.sequences):
            f.writelines(f"u{user}\ti{item}\t{pos}\n" for pos, item in enumerate(seq.tolist()))
    return path


# -- our side ---------------------------------------------------------------------------


def bench_config(backbone: str, layout: str, args: argparse.Namespace, **extra: Any) -> TrainConfig:
    """The training settings shared with RecBole's side (full softmax CE, same sizes)."""
    return TrainConfig(
        backbone=backbone,
        model={"loss": "ce"},
        max_len=args.max_len,
        batch_size=args.batch_size,
        lr=args.lr,
        threads=args.threads,
        seed=args.seed,
        layout=layout,
        ks=(10,),
        device=args.device,
        **extra,
    )


def run_ours(
    data: PreparedDataset,
    backbone: str,
    layout: str,
    args: argparse.Namespace,
    epochs: int,
    post_ln: bool = False,
    model_extra: dict[str, Any] | None = None,
    label: str = "",
) -> dict[str, Any]:
    """Train with slimrec's Trainer (early stopping) and collect per-epoch times + test."""
    tag = ("-post-ln" if post_ln else "") + (f"-{label}" if label else "")
    out = args.work / "runs" / f"{data.name}-{backbone}-{layout}{tag}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = bench_config(
        backbone,
        layout,
        args,
        epochs=epochs,
        patience=args.patience,
        test_protocols=("full",),
        mask_history=args.protocol == "masked",
    )
    if post_ln:  # RecBole's block layout (SASRec only), which has no embedding scale
        post = {"norm_first": False, "scale_embeddings": False}
        cfg = cfg.model_copy(update={"model": {**cfg.model, **post}})
    if model_extra:
        cfg = cfg.model_copy(update={"model": {**cfg.model, **model_extra}})
    start = time.perf_counter()
    trainer = Trainer(cfg, out)
    results = trainer.fit(data)
    total_s = time.perf_counter() - start
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    trainer.model_.load_state_dict(torch.load(out / "best.pt", map_location="cpu"))
    return {
        "impl": f"slimrec ({', '.join([layout] + ['post-LN'] * post_ln + [label] * bool(label))})",
        "epochs": [{k: x[k] for k in ("epoch", "loss", "train_s", "eval_s")} for x in lines],
        "best_epoch": results["best_epoch"],
        "epochs_run": results["epochs_run"],
        "total_s": round(total_s, 2),
        "select": args.protocol,
        "test": {k: results["test"]["full"][k] for k in ("ndcg@10", "hit@10")},
        "test_protocols": test_protocols(trainer, data),
        "extrapolated": False,
        "model": model_settings(trainer),
    }


def model_settings(trainer: Trainer) -> dict[str, Any]:
    """Every setting of the trained backbone, defaults included, and its revision."""
    model = trainer.model_
    return dataclasses.asdict(model.config) | {"revision": model.revision}  # type: ignore[arg-type]


def test_protocols(trainer: Trainer, data: PreparedDataset) -> dict[str, dict[str, float]]:
    """Test NDCG@10 / Hit@10 of the trainer's model, history masked and unmasked."""
    out = {}
    for name, mask in (("unmasked", False), ("masked", True)):
        test = trainer.evaluate(data, "test", EvalConfig(ks=(10,), mask_history=mask))
        out[name] = {k: test[k] for k in ("ndcg@10", "hit@10")}
    return out


def time_ours_prefix_partial(
    data: PreparedDataset,
    backbone: str,
    args: argparse.Namespace,
    model_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Time ``--max-batches`` batches of our prefix layout and extrapolate to one epoch.

    ``model_extra``: backbone options over the benchmark's (e.g. ``bench/prefix_steps.py``'s
    SASRec variants)."""
    out = args.work / "runs" / f"{data.name}-{backbone}-prefix-partial"
    shutil.rmtree(out, ignore_errors=True)
    cfg = bench_config(backbone, "prefix", args)
    if model_extra:
        cfg = cfg.model_copy(update={"model": {**cfg.model, **model_extra}})
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    trainer = Trainer(cfg, out)
    device = torch.device(args.device)
    trainer.model_ = trainer.build_model(data).to(device)
    optimizer = torch.optim.Adam(trainer.model_.parameters(), lr=args.lr)
    examples = prefix_examples(data.split("train")[0], args.max_len)
    n_batches = -(-len(examples) // args.batch_size)
    take = min(args.max_batches, n_batches) * args.batch_size
    order = torch.randperm(len(examples), generator=torch.Generator().manual_seed(args.seed))
    rows = order[:take]
    sub = Examples(
        examples.seqs[rows],
        examples.lengths[rows],
        examples.targets[rows],
        examples.users[rows],
        examples.fuse[rows],
    )
    start = time.perf_counter()
    trainer._train_epoch(sub, optimizer, 0, "prefix", device)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    trainer.evaluate(data, "valid", EvalConfig(ks=(10,), mask_history=args.protocol == "masked"))
    eval_s = time.perf_counter() - start
    protocols = test_protocols(trainer, data)
    scale = n_batches / min(args.max_batches, n_batches)
    return {
        "impl": "slimrec (prefix)",
        "epochs": [{"epoch": 0, "train_s": round(train_s * scale, 3), "eval_s": round(eval_s, 3)}],
        "best_epoch": 0,
        "epochs_run": 1,
        "total_s": None,
        "select": args.protocol,
        "test": protocols[args.protocol],
        "test_protocols": protocols,
        "extrapolated": scale > 1,
        "batches": f"{min(args.max_batches, n_batches)}/{n_batches}",
        "model": model_settings(trainer),
    }


# -- RecBole side -----------------------------------------------------------------------


def run_recbole(
    data: PreparedDataset,
    backbone: str,
    args: argparse.Namespace,
    epochs: int,
    max_batches: int | None,
) -> dict[str, Any]:
    """Train RecBole's model in its own venv (subprocess) and read its JSON result."""
    settings = {
        "model": RECBOLE_MODELS[backbone],
        "dataset": data.name,
        "data_path": str(args.work / "atomic"),
        "checkpoint_dir": str(args.work / "recbole-saved"),
        "max_len": args.max_len,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "patience": args.patience,
        "epochs": epochs,
        "seed": args.seed,
        "threads": args.threads,
        "max_batches": max_batches,
        "model_options": RECBOLE_OPTIONS[backbone],
        "select": "masked" if args.protocol == "masked" else "native",
        "device": args.device,
        "time_budget_s": args.time_budget,
    }
    env = os.environ | {
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "OMP_NUM_THREADS": str(args.threads),
        "MKL_NUM_THREADS": str(args.threads),
    }
    start = time.perf_counter()
    proc = subprocess.run(
        [str(RECBOLE_PYTHON), str(RECBOLE_RUNNER), json.dumps(settings)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
        check=True,
        cwd=args.work,
    )
    total_s = time.perf_counter() - start  # includes RecBole's data loading and startup
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    res = json.loads(line.removeprefix("RESULT "))
    scale = 1.0
    if max_batches and max_batches < res["batches_per_epoch"]:
        scale = res["batches_per_epoch"] / max_batches
    for e in res["epochs"]:
        e["train_s_measured"] = e["train_s"]
        e["train_s"] = round(e["train_s"] * scale, 3)
    res |= {
        "impl": "RecBole 1.2.1",
        "select": args.protocol,
        "total_s": None if scale > 1 else round(total_s, 2),
        "extrapolated": scale > 1,
    }
    if scale > 1:
        res["batches"] = f"{max_batches}/{res['batches_per_epoch']}"
    if res["own_vs_native_unmasked"] > 1e-3:
        print(
            f"WARNING: our scoring of RecBole's model differs from RecBole's evaluator by"
            f" {res['own_vs_native_unmasked']:.4f} (unmasked test)",
            flush=True,
        )
    return res


# -- report -----------------------------------------------------------------------------


def per_epoch(res: dict[str, Any]) -> tuple[float, float]:
    """Median training seconds and median training + validation seconds per epoch."""
    train = [e["train_s"] for e in res["epochs"]]
    both = [e["train_s"] + e["eval_s"] for e in res["epochs"]]
    return statistics.median(train), statistics.median(both)


def markdown(rows: list[dict[str, Any]]) -> str:
    head = (
        "| dataset | model | implementation | epochs run (best) | train s/epoch |"
        " train+valid s/epoch | total s | NDCG@10 / Hit@10, history masked |"
        " NDCG@10 / Hit@10, unmasked |"
    )
    lines = [head, "|" + "---|" * 9]
    if not rows:
        return "\n".join(lines) + "\n"
    for r in rows:
        train, both = per_epoch(r)
        mark = "~" if r["extrapolated"] else ""
        total = "–" if r["total_s"] is None else f"{r['total_s']:.1f}"
        note = f" [{r['batches']} batches]" if r.get("batches") else ""
        if r.get("stopped") == "time budget":
            note += " [stopped by the time budget]"
        masked, unmasked = (
            f"{t['ndcg@10']:.4f} / {t['hit@10']:.4f}"
            for t in (r["test_protocols"][p] for p in ("masked", "unmasked"))
        )
        lines.append(
            f"| {r['dataset']} | {r['backbone']} | {r['impl']}{note} |"
            f" {r['epochs_run']} ({r['best_epoch']}) | {mark}{train:.2f} | {mark}{both:.2f} |"
            f" {total} | {masked} | {unmasked} |"
        )
    lines += [
        "",
        f"Best epoch picked on valid NDCG@10 with the history {rows[0]['select']} on both"
        " sides; each side scores its own model under both test protocols.",
    ]
    lines += ["", "| dataset | model | RecBole / slimrec time per epoch (train, train+valid) |"]
    lines.append("|---|---|---|")
    for r in rows:
        if r["impl"] != "RecBole 1.2.1":
            continue
        rb = per_epoch(r)
        for o in rows:
            same = (o["dataset"], o["backbone"]) == (r["dataset"], r["backbone"])
            if same and o["impl"].startswith("slimrec"):
                ours = per_epoch(o)
                lines.append(
                    f"| {r['dataset']} | {r['backbone']} | vs {o['impl']}:"
                    f" {rb[0] / ours[0]:.1f}x, {rb[1] / ours[1]:.1f}x |"
                )
    return "\n".join(lines) + "\n"


def machine() -> dict[str, Any]:
    return hardware() | {"date": date.today().isoformat()}


# -- main -------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=["amazon-office", "ml-1m"])
    p.add_argument("--backbones", nargs="+", default=["sasrec", "gru4rec"])
    p.add_argument("--epochs", type=int, default=100, help="epoch cap on amazon-office")
    p.add_argument("--patience", type=int, default=10)
    p.add_argument(
        "--ml1m-epochs", type=int, default=1, help="our epoch cap on ml-1m, amazon-games"
    )
    p.add_argument(
        "--ml1m-recbole-epochs", type=int, default=1, help="RecBole's on ml-1m, amazon-games"
    )
    p.add_argument(
        "--max-batches",
        type=int,
        default=100,
        help="BIG data: RecBole / our prefix layout train this many batches per epoch"
        " (0: whole epochs)",
    )
    p.add_argument("--prefix", action="store_true", help="also run our prefix layout")
    p.add_argument(
        "--post-ln", action="store_true", help="also run our SASRec in RecBole's post-LN layout"
    )
    p.add_argument(
        "--single-ffn-dropout",
        action="store_true",
        help="also run our SASRec with dropout only after the FFN, as RecBole has it",
    )
    p.add_argument(
        "--protocol",
        choices=("masked", "unmasked"),
        default="masked",
        help="full ranking with the user's history masked (slimrec's default) or not"
        " (RecBole's for sequential models): picks the best epoch on both sides",
    )
    p.add_argument("--skip-recbole", action="store_true")
    p.add_argument("--skip-ours", action="store_true", help="run RecBole's side only")
    p.add_argument("--device", default="cpu", help="cpu | cuda, on both sides")
    p.add_argument(
        "--time-budget",
        type=float,
        default=None,
        help="RecBole: stop after the epoch that passes this many seconds (whole-epoch"
        " runs on big data; the result says why it stopped)",
    )
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, default=Path("/tmp/slimrec-bench"))
    p.add_argument("--out", type=Path, default=BENCH / "results")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    arg_dict = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    info: dict[str, Any] = {"machine": machine(), "args": arg_dict, "datasets": {}}
    for name in args.datasets:
        data = prepare(name, args.work)
        export_atomic(data, args.work / "atomic")
        info["datasets"][name] = {"stats": data.stats(), "targets_in_history": repeats(data)}
        print(f"== {name}: {data.stats()} targets in history: {repeats(data)}", flush=True)
        big = name in BIG
        for backbone in args.backbones:
            jobs = [] if args.skip_ours else [("ours", "causal")]
            if args.prefix and not args.skip_ours:
                jobs.append(("ours", "prefix"))
            if args.post_ln and backbone == "sasrec":
                jobs.append(("ours-post-ln", "causal"))
            if args.single_ffn_dropout and backbone == "sasrec":
                jobs.append(("ours-single-ffn-dropout", "causal"))
            if not args.skip_recbole:
                jobs.append(("recbole", None))
            for side, layout in jobs:
                print(f"-- {name} {backbone} {side} {layout or ''}", flush=True)
                if side == "ours" and layout == "prefix" and big and args.max_batches:
                    res = time_ours_prefix_partial(data, backbone, args)
                elif side.startswith("ours"):
                    epochs = args.ml1m_epochs if big else args.epochs
                    single = side == "ours-single-ffn-dropout"
                    res = run_ours(
                        data,
                        backbone,
                        layout,
                        args,
                        epochs,
                        post_ln=side == "ours-post-ln",
                        model_extra={"ffn_inner_dropout": False} if single else None,
                        label="single FFN dropout" if single else "",
                    )
                else:
                    epochs = args.ml1m_recbole_epochs if big else args.epochs
                    res = run_recbole(
                        data, backbone, args, epochs, args.max_batches if big else None
                    )
                res |= {"dataset": name, "backbone": backbone}
                rows.append(res)
                train, both = per_epoch(res)
                print(
                    f"   {res['impl']}: {train:.2f} s/epoch train, {both:.2f} with valid;"
                    f" test {res['test']}",
                    flush=True,
                )
                # Write as we go, so an interrupted run keeps what it measured.
                table = markdown(rows)
                (args.out / "backbones.md").write_text(table)
                (args.out / "backbones.json").write_text(
                    json.dumps(info | {"results": rows}, indent=2) + "\n"
                )
    print()
    print(markdown(rows))
    print(json.dumps(info["machine"]))


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
