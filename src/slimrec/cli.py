"""The ``slimrec`` command line.

Every user-facing problem is a :class:`~slimrec.errors.SlimrecError`; :func:`main`
prints it as one line on stderr and exits with status 2. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, TypeVar

import typer
from pydantic import BaseModel

from slimrec.errors import ConfigError, SlimrecError
from slimrec.io import check_writable
from slimrec.machine import THREADS

app = typer.Typer(
    help="slimrec: sequential recommendation with rationales distilled from LLMs (SLIM).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
M = TypeVar("M", bound=BaseModel)


def _version(show: bool) -> None:
    if show:
        from slimrec import __version__

        typer.echo(f"slimrec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """slimrec: sequential recommendation with rationales distilled from LLMs (SLIM)."""


data_app = typer.Typer(help="Load, prepare and inspect datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
diagnose_app = typer.Typer(help="Diagnostics of trained models.", no_args_is_help=True)
app.add_typer(diagnose_app, name="diagnose")


def _mapping(text: str | None, option: str) -> dict[str, str]:
    """Parse ``a=x,b=y`` into a dict, naming the option on error."""
    if not text:
        return {}
    pairs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(
                f"cannot read {part!r} as NAME=COLUMN", where=option, fix="e.g. user=uid,item=iid"
            )
        pairs[key.strip()] = value.strip()
    return pairs


def _say(message: str) -> None:
    typer.echo(message, err=True)


def _print_stats(title: str, stats: dict[str, Any]) -> None:
    typer.echo(title)
    for key, value in stats.items():
        shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value
        typer.echo(f"  {key.replace('_', ' '):<24} {shown}")


RAY_REPLICAS = typer.Option(None, help="Run on Ray Data with this many model replicas.")
RAY_ADDRESS = typer.Option(
    None, help="The Ray cluster to join (auto, ray://HOST:10001); default a local one."
)


def _ray(replicas: int | None, address: str | None) -> dict[str, Any] | None:
    """The ``ray`` section the two Ray flags ask for (None: neither given)."""
    if replicas is None and address is None:
        return None
    return {"replicas": replicas or 2} | ({"address": address} if address else {})


def _config(cls: type[M], path: Path | None, flags: dict[str, Any]) -> M:
    """A config from an optional YAML file, with the command line's given flags on top
    (an invalid value is blamed on its flag when a flag gave it, else on the file)."""
    from slimrec.config import field_values, load_yaml, parse

    base = field_values(load_yaml(cls, path)) if path else {}
    given = {k: v for k, v in flags.items() if v is not None}
    return parse(cls, base | given, where=path or "command line", flags=given)


@data_app.command("prepare")
def data_prepare(
    dataset: str = typer.Option("ml-100k", help="ml-100k, ml-1m, amazon-office, or a path."),
    out: Path = typer.Option(..., help="Output folder (written atomically)."),
    format: str = typer.Option(
        "auto", help="auto|embedded|benchmark|movielens|amazon|csv|tsv|parquet|jsonl"
    ),
    items: str | None = typer.Option(
        None, help="Item catalog file (generic formats, Amazon meta)."
    ),
    columns: str | None = typer.Option(
        None, help="Interaction columns, e.g. user=uid,item=iid,order=ts"
    ),
    item_columns: str | None = typer.Option(None, help="Catalog columns, e.g. item=iid,title=name"),
    encoding: str = typer.Option("utf-8", help="Text encoding of generic files."),
    sep: str | None = typer.Option(None, help="Field separator of CSV files."),
    user_core: int = typer.Option(5, help="k-core threshold for users."),
    item_core: int = typer.Option(5, help="k-core threshold for items."),
    drop_repeats: bool = typer.Option(False, help="Collapse consecutive repeats of an item."),
    min_seq_len: int = typer.Option(3, help="Shortest sequence kept (>= 3)."),
    max_seq_len: int | None = typer.Option(
        None, help="Keep only the most recent N items per user."
    ),
    max_users: int | None = typer.Option(None, help="Keep a seeded random subset of users."),
    missing_items: str = typer.Option("drop", help="Items absent from the catalog: drop|fail."),
    seed: int = typer.Option(0, help="Seed of the user subsample."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output folder."),
) -> None:
    """Load a dataset, filter and remap it, and write it as a prepared folder."""
    from slimrec.data import PrepareConfig, prepare
    from slimrec.data.loaders import DataSource, load_dataset

    if out.exists() and not force:
        raise ConfigError(
            "output folder already exists", where=out, fix="pass --force or another --out"
        )
    check_writable(out)  # found now, not after loading everything
    source_fields = {
        "dataset": dataset,
        "format": format,
        "items": items,
        "columns": _mapping(columns, "--columns"),
        "item_columns": _mapping(item_columns, "--item-columns"),
        "encoding": encoding,
        "sep": sep,
    }
    source = _config(DataSource, None, source_fields)
    prepare_fields = {
        "user_core": user_core,
        "item_core": item_core,
        "drop_consecutive_repeats": drop_repeats,
        "min_seq_len": min_seq_len,
        "max_seq_len": max_seq_len,
        "max_users": max_users,
        "missing_items": missing_items,
        "seed": seed,
    }
    # drop_consecutive_repeats is a plain switch (--drop-repeats): it cannot fail to parse.
    config = _config(PrepareConfig, None, prepare_fields)

    start = time.perf_counter()
    _say(f"loading {dataset} ...")
    raw = load_dataset(source)
    _print_stats(f"{raw.name}: before filtering", raw.stats())
    prepared = prepare(raw, config)
    prepared.save(out, overwrite=force)
    _print_stats(f"{prepared.name}: prepared", prepared.stats())
    dropped = {k: v for k, v in prepared.log.items() if k.startswith("dropped") and v}
    if dropped:
        typer.echo("  " + ", ".join(f"{k.replace('_', ' ')}: {v:,}" for k, v in dropped.items()))
    typer.echo(f"wrote {out} in {time.perf_counter() - start:.1f} s")


@data_app.command("stats")
def data_stats(
    path: Path = typer.Argument(..., help="A prepared dataset folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest statistics as JSON."),
) -> None:
    """Print the statistics of a prepared dataset."""
    from slimrec.data import PreparedDataset

    prepared = PreparedDataset.load(path)
    manifest = prepared.manifest()
    if as_json:
        typer.echo(
            json.dumps(
                {k: manifest[k] for k in ("name", "raw_stats", "stats", "options", "log")}, indent=2
            )
        )
        return
    _print_stats(f"{prepared.name}: before filtering", prepared.raw_stats)
    _print_stats(f"{prepared.name}: prepared", prepared.stats())
    _print_stats("options", {k: v for k, v in prepared.options.items()})


@app.command("train")
def train(
    data: Path = typer.Option(..., help="A prepared dataset folder (slimrec data prepare)."),
    out: Path = typer.Option(..., help="Run folder: checkpoints, metrics.jsonl, results.json."),
    backbone: str | None = typer.Option(
        None, help="caser|gru4rec|sasrec|srgnn, '+' for text-fused items."
    ),
    config: Path | None = typer.Option(None, help="A TrainConfig YAML; flags override it."),
    epochs: int | None = typer.Option(None, help="Maximum epochs."),
    patience: int | None = typer.Option(None, help="Early-stopping patience in epochs."),
    loss: str | None = typer.Option(None, help="ce (full softmax) or bce (sampled negatives)."),
    seed: int | None = typer.Option(None, help="Random seed."),
    threads: int | None = typer.Option(None, help=THREADS),
    device: str | None = typer.Option(None, help="auto|cpu|cuda."),
    text_encoder: str = typer.Option("all-minilm-l6-v2", help="Sentence encoder for '+' variants."),
) -> None:
    """Train a backbone with early stopping on validation NDCG@10; resumes if interrupted."""
    from slimrec.config import load_yaml, parse
    from slimrec.data import PreparedDataset
    from slimrec.text.encoder import default_cache
    from slimrec.training import TrainConfig, Trainer

    base = load_yaml(TrainConfig, config).model_dump() if config else {}
    flags = {"backbone": backbone, "epochs": epochs, "patience": patience, "seed": seed}
    flags |= {"threads": threads, "device": device}
    given = {k: v for k, v in flags.items() if v is not None}
    if loss is not None:  # one option of the model section, the file's others kept
        given["model"] = {**base.get("model", {}), "loss": loss}
    cfg = parse(TrainConfig, base | given, where=config or "command line", flags=given)
    check_writable(out)
    dataset = PreparedDataset.load(data)
    text_emb = None
    if cfg.backbone.endswith("+"):
        from slimrec.text import TextEncoder, item_embedding_table

        text_emb = item_embedding_table(
            dataset.items, TextEncoder(text_encoder, cache=default_cache())
        )
    results = Trainer(cfg, out, text_emb=text_emb).fit(dataset)
    typer.echo(f"{cfg.backbone} on {dataset.name}: best epoch {results['best_epoch']}")
    for protocol, metrics in results["test"].items():
        shown = "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if "@" in k)
        typer.echo(f"  test ({protocol}): {shown}")


@app.command("teach")
def teach(
    data: Path = typer.Option(..., help="A prepared dataset folder (slimrec data prepare)."),
    out: Path = typer.Option(..., help="Output Parquet file of rationales (written atomically)."),
    n_users: int = typer.Option(200, help="How many users (seeded subset) get a rationale."),
    seed: int = typer.Option(0, help="Seed of the user subset."),
    config: Path | None = typer.Option(None, help="A TeacherConfig YAML; flags override it."),
    backend: str | None = typer.Option(
        None, help="openai (any compatible endpoint), hf, llamacpp or vllm."
    ),
    model: str | None = typer.Option(None, help="Model name at the endpoint, or a local model."),
    base_url: str | None = typer.Option(None, help="Endpoint, e.g. http://127.0.0.1:8000/v1"),
    concurrency: int | None = typer.Option(None, help="Requests in flight at once (openai)."),
    structured: bool | None = typer.Option(
        None, help="Hold answers to the three steps with a JSON schema (not backend hf)."
    ),
    cache: Path | None = typer.Option(
        None, help="Answer cache (SQLite); default $SLIMREC_CACHE/llm-answers.sqlite."
    ),
    ray_replicas: int | None = RAY_REPLICAS,
    ray_address: str | None = RAY_ADDRESS,
) -> None:
    """Ask the teacher LLM for step-by-step rationales; cached and resumable."""
    from slimrec.methods.slim.teach import TeacherConfig
    from slimrec.methods.slim.teach import teach as run_teach

    flags = {"backend": backend, "model": model, "base_url": base_url, "structured": structured}
    flags |= {"concurrency": concurrency, "ray": _ray(ray_replicas, ray_address)}
    cfg = _config(TeacherConfig, config, flags)
    check_writable(out, file=True)  # before the first request, not after the last
    result = run_teach(data, out, cfg, n_users=n_users, seed=seed, cache=cache)
    typer.echo(result.summary())


@app.command("distill")
def distill_student(
    rationales: Path = typer.Option(..., help="rationales.parquet written by `slimrec teach`."),
    out: Path = typer.Option(..., help="Run folder: adapter/, last/, metrics.jsonl, results."),
    config: Path | None = typer.Option(None, help="A StudentConfig YAML; flags override it."),
    base_model: str | None = typer.Option(None, help="smollm2-135m or a local model folder."),
    epochs: int | None = typer.Option(None, help="Passes over the training rationales."),
    lr: float | None = typer.Option(None, help="AdamW learning rate."),
    batch_size: int | None = typer.Option(None, help="Sequences per forward pass."),
    grad_accum: int | None = typer.Option(None, help="Forward passes per optimiser step."),
    max_length: int | None = typer.Option(None, help="Tokens per sequence (prompt cut first)."),
    lora_rank: int | None = typer.Option(None, help="LoRA rank r."),
    seed: int | None = typer.Option(None, help="Seed of the split, LoRA init and batches."),
    threads: int | None = typer.Option(None, help=THREADS),
    device: str | None = typer.Option(None, help="auto|cpu|cuda."),
    report: bool = typer.Option(
        False, "--report", help="Compare base and student on held-out users (quality.md)."
    ),
    report_users: int = typer.Option(32, help="Held-out rationales in the report."),
    report_tokens: int = typer.Option(384, help="Most new tokens per answer in the report."),
    report_no_repeat_ngram: int = typer.Option(
        0, help="Report: forbid repeating an n-gram of this many tokens in an answer (0 = off)."
    ),
    text_encoder: str = typer.Option("all-minilm-l6-v2", help="Sentence encoder of the report."),
) -> None:
    """LoRA-distil the teacher's rationales into the small student LM; resumes if interrupted."""
    from slimrec.methods.slim.student import StudentConfig, distill

    flags = {"base_model": base_model, "epochs": epochs, "lr": lr, "batch_size": batch_size}
    flags |= {"grad_accum": grad_accum, "max_length": max_length, "lora_rank": lora_rank}
    flags |= {"seed": seed, "threads": threads, "device": device}
    cfg = _config(StudentConfig, config, flags)
    check_writable(out)
    results = distill(rationales, cfg, out)
    typer.echo(
        f"student {cfg.base_model}: best epoch {results['best_epoch']}, validation loss "
        f"{results['valid_loss_base']:.4f} -> {results['valid_loss']:.4f} per rationale token; "
        f"adapter in {results['adapter']}"
    )
    if report:
        from slimrec.methods.slim.student.quality import run_quality
        from slimrec.text import TextEncoder
        from slimrec.text.encoder import default_cache

        encoder = TextEncoder(text_encoder, cache=default_cache())
        run_quality(
            rationales,
            out,
            cfg,
            encoder=encoder,
            max_users=report_users,
            max_new_tokens=report_tokens,
            no_repeat_ngram=report_no_repeat_ngram,
        )
        typer.echo((out / "quality.md").read_text(encoding="utf-8"))


@app.command("serve-llm")
def serve_llm(
    model: str = typer.Option(..., help="Registry name (smollm2-135m, ...) or a model folder."),
    adapter: Path | None = typer.Option(
        None, exists=True, file_okay=False, help="A peft LoRA folder to merge in."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0: a free one, printed)."),
    batch_size: int = typer.Option(
        16, min=1, help="Most concurrent requests in one forward batch."
    ),
    threads: int | None = typer.Option(None, min=1, help=THREADS),
    served_name: str | None = typer.Option(
        None, help="Model name clients send (default: --model's last part)."
    ),
) -> None:
    """Serve a local model as an OpenAI-compatible /v1/chat/completions endpoint."""
    from slimrec.serve.llm_server import serve

    serve(
        model,
        adapter=str(adapter) if adapter else None,
        host=host,
        port=port,
        batch_size=batch_size,
        threads=threads,
        served_name=served_name,
    )


@diagnose_app.command("order")
def diagnose_order_cmd(
    run: Path = typer.Option(
        ..., help="A `slimrec run` folder; every fit of its latest invocation is tested."
    ),
    perturbation: str = typer.Option(
        "shuffle", help="shuffle | reverse | shuffle-keep-last (of each model's window)."
    ),
    repeats: int = typer.Option(3, help="Permutations per user, averaged."),
    seed: int = typer.Option(0, help="Seed of the permutations."),
    split: str = typer.Option("test", help="test | valid histories."),
    window: int | None = typer.Option(
        None, help="Every model reads and has perturbed only its last N items (a matched window)."
    ),
    method: list[str] = typer.Option(
        [], help="Only the fits of this method (repeatable; default: every fit)."
    ),
    device: str = typer.Option("auto", help="auto | cpu | cuda | cuda:N"),
    out: Path | None = typer.Option(
        None,
        help="Folder for the tables (default: the run's diagnose/, where a table of the "
        "same perturbation and window is replaced).",
    ),
) -> None:
    """Does each model use the order of a history? Scores shuffled histories (LLM-SRec's test)."""
    from slimrec.config import parse
    from slimrec.devices import pick_device
    from slimrec.eval.order import OrderConfig
    from slimrec.pipeline.diagnose import diagnose_order

    flags = {"perturbation": perturbation, "repeats": repeats, "seed": seed, "split": split}
    config = parse(OrderConfig, flags | {"window": window}, where="diagnose order")
    if out is not None:
        check_writable(out)
    table, _ = diagnose_order(run, config, device=str(pick_device(device)), methods=method, out=out)
    typer.echo(table.read_text(encoding="utf-8"))
    typer.echo(f"written: {table} and {table.with_suffix('.json')}")


@app.command("methods")
def methods_cmd() -> None:
    """Every registered method: its family, preset settings, description and config fields."""
    from slimrec.methods import METHODS

    width = max(map(len, METHODS))
    for entry in METHODS.values():
        preset = ", ".join(f"{k}={v}" for k, v in entry.preset.items())
        family = entry.method_cls.__name__ + (f"({preset})" if preset else "")
        typer.echo(f"{entry.name:<{width}}  {family}: {entry.description}")
    typer.echo("\nConfig fields (a run sets them per method: `methods: [backbone, slim: {...}]`):")
    for cls in dict.fromkeys(e.config_cls for e in METHODS.values()):
        typer.echo(f"  {cls.__name__}")
        _echo_fields(cls)


def _echo_fields(cls: type, prefix: str = "") -> None:
    """One line per field; a nested section's fields as ``section.field``."""
    from pydantic import BaseModel

    for name, field in cls.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            _echo_fields(kind, f"{prefix}{name}.")
            continue
        kind = kind.__name__ if isinstance(kind, type) else str(kind).replace("typing.", "")
        typer.echo(f"    {prefix}{name}: {kind} = {field.default!r}  {field.description or ''}")


@app.command("run")
def run(
    config: Path = typer.Option(..., help="A RunConfig YAML (see configs/quickstart.yaml)."),
    out: Path | None = typer.Option(None, help="Run folder (default: runs/<config name>)."),
    settings: list[str] = typer.Option(
        [],
        "--set",
        metavar="KEY=VALUE",
        help="Change one setting of the config, VALUE as YAML; repeatable, e.g. --set "
        "'seeds=[0]' --set train.epochs=50 --set methods.llm-srec.epochs=3.",
    ),
) -> None:
    """The whole SLIM pipeline: prepare, teach, distill, reason, embed, fit, report; cached.

    Started several times on one config and --out, the processes share out the fits.
    """
    from slimrec.config import load_yaml
    from slimrec.pipeline import RunConfig, run_pipeline

    cfg = load_yaml(RunConfig, config, settings)
    folder = out or Path("runs") / config.stem
    check_writable(folder)
    outcome = run_pipeline(cfg, folder, echo=_say)
    typer.echo(outcome.table)
    typer.echo(f"report: {outcome.report}")


@app.command("report")
def report_cmd(
    run: Path = typer.Option(..., help="A run folder (the --out of `slimrec run`)."),
    out: Path | None = typer.Option(None, help="Where report.md goes (default: the run folder)."),
) -> None:
    """The report of a run from every fit it has finished so far, whichever run made it."""
    from slimrec.pipeline.recorded import report_recorded

    typer.echo(f"report: {report_recorded(run, out)}")


@app.command("reason")
def reason_cmd(
    data: Path = typer.Option(..., help="A prepared dataset folder (slimrec data prepare)."),
    out: Path = typer.Option(..., help="Output rationales Parquet (or a folder for it)."),
    adapter: Path | None = typer.Option(None, help="LoRA adapter folder (distill's OUT/adapter)."),
    base_model: str | None = typer.Option(None, help="smollm2-135m or a local model folder."),
    batch_size: int | None = typer.Option(None, help="Rows decoded together."),
    max_new_tokens: int | None = typer.Option(None, help="Cap on tokens per rationale."),
    threads: int | None = typer.Option(None, help=THREADS),
    dtype: str | None = typer.Option(None, help="auto|float32|bfloat16|float16."),
    device: str | None = typer.Option(None, help="auto|cpu|cuda|cuda:N (auto: CUDA if any)."),
    engine: str | None = typer.Option(
        None,
        help="hf (slimrec's decoder), vllm (scripts/vllm-env.sh first) or llamacpp "
        "(the shipped GGUF, adapter applied by llama.cpp).",
    ),
    shard_size: int | None = typer.Option(None, help="Users per resumable shard."),
    structured: bool | None = typer.Option(
        None, "--structured/--free-text", help="Hold the student to the three steps (hf only)."
    ),
    ray_replicas: int | None = RAY_REPLICAS,
    ray_address: str | None = RAY_ADDRESS,
    config: Path | None = typer.Option(None, help="A ReasonConfig YAML; flags override it."),
) -> None:
    """The student writes a rationale for every user; resumable in shards."""
    from slimrec.config import field_values
    from slimrec.methods.slim.student.reason import ReasonConfig, reason

    flags: dict[str, object] = {
        "adapter": str(adapter) if adapter else None,
        "base_model": base_model,
    }
    flags |= {"batch_size": batch_size, "threads": threads, "dtype": dtype}
    flags |= {"device": device, "engine": engine, "shard_size": shard_size}
    flags |= {"structured": structured, "ray": _ray(ray_replicas, ray_address)}
    cfg = _config(ReasonConfig, config, flags)
    if max_new_tokens is not None:
        sampling = cfg.sampling.model_dump() | {"max_new_tokens": max_new_tokens}
        cfg = _config(ReasonConfig, None, field_values(cfg) | {"sampling": sampling})
    check_writable(out, file=out.suffix == ".parquet")
    result = reason(data, out, cfg)
    typer.echo(
        f"{result['users']:,} rationales ({result['generated']:,} generated now, parse rate "
        f"{result['parse_rate']:.1%}, {result['tokens_per_s']} tok/s) -> {result['path']}"
    )


@app.command("serve")
def serve_cmd(
    run: Path = typer.Option(..., help="A finished `slimrec run` folder."),
    method: str = typer.Option("slim", help="Which trained method to serve."),
    backbone: str | None = typer.Option(None, help="Its backbone (default: the run's first)."),
    seed: int = typer.Option(0, help="Which seed's model."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, min=0, max=65535, help="TCP port (0: a free one, printed)."),
    device: str = typer.Option(
        "auto", help="auto|cpu|cuda for the recommender and the student (auto: CUDA if any)."
    ),
    student: bool = typer.Option(
        True, "--student/--no-student", help="Explain new histories with the student."
    ),
    max_pending: int = typer.Option(8, help="Generations waiting at most before 503."),
    threads: int = typer.Option(
        1, help="torch CPU threads (1: lowest latency on a busy CPU; more for the student)."
    ),
) -> None:
    """Serve recommendations with their rationales: REST API, OpenAPI, and a web page."""
    from slimrec.serve.app import serve

    if max_pending < 1:
        raise ConfigError(f"--max-pending must be at least 1, got {max_pending}")
    serve(
        str(run),
        method=method,
        backbone=backbone,
        seed=seed,
        host=host,
        port=port,
        device=device,
        student=student,
        max_pending=max_pending,
        threads=threads,
    )


@app.command("recommend")
def recommend_cmd(
    run: Path = typer.Option(..., help="A finished `slimrec run` folder."),
    user: str | None = typer.Option(None, help="Original id of a known user."),
    history: list[str] | None = typer.Option(
        None, help="Items oldest first (ids or exact titles); repeat, or separate with ','."
    ),
    k: int = typer.Option(10, help="How many items."),
    method: str = typer.Option("slim", help="Which trained method."),
    backbone: str | None = typer.Option(None, help="Its backbone (default: the run's first)."),
    seed: int = typer.Option(0, help="Which seed's model."),
    plain: bool = typer.Option(False, "--plain", help="Plain text instead of a rich table."),
    as_json: bool = typer.Option(False, "--json", help="The API's JSON answer."),
) -> None:
    """Top-k items and the rationale for a known user or a new history, in the terminal."""
    from slimrec.serve.recommend_cli import recommend_once

    text = recommend_once(
        run,
        user=user,
        history=history,
        k=k,
        method=method,
        backbone=backbone,
        seed=seed,
        style="json" if as_json else "plain" if plain else "auto",
    )
    if text is not None:
        typer.echo(text)


def _is_click(error: BaseException, name: str) -> bool:
    """Whether ``error`` is click's ``name`` exception: typer raises its own bundled copy
    of click's classes (``typer._click``), so match by class name, not identity."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one line and exit status 2."""
    from slimrec.progress import progress_mode

    try:
        progress_mode()  # a bad $SLIMREC_PROGRESS fails now, not at a long run's first bar
        app(args=argv, prog_name="slimrec", standalone_mode=False)
    except SlimrecError as e:
        print(f"error: {e.one_line()}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a path the checks could not foresee (e.g. a pseudo file system)
        if e.filename is None:
            raise
        error = ConfigError(
            f"cannot read or write it ({e.strerror or e})",
            where=e.filename,
            fix="check the path and its permissions",
        )
        print(f"error: {error.one_line()}", file=sys.stderr)
        return 2
    except Exception as e:  # click's (typer's) usage errors: a missing option, a bad value
        if _is_click(e, "Abort"):
            print("interrupted", file=sys.stderr)
            return 130
        if not _is_click(e, "ClickException"):
            raise
        if _is_click(e, "NoArgsIsHelpError"):
            return 0  # `slimrec` alone: the help was printed, as asked
        ctx = getattr(e, "ctx", None)
        command = ctx.command_path if ctx is not None else "slimrec"
        message = " ".join(e.format_message().split())  # type: ignore[attr-defined]
        print(f"error: {command}: {message} (see {command} --help)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
