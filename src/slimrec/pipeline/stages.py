"""The work of each pipeline stage, and the inputs that key its cache.

Each ``*_stage`` function returns ``(inputs, work)`` for :meth:`StageRunner.run`:
``inputs`` are the upstream stage keys and the config values that can change the
stage's artifacts; ``work(folder)`` builds them in ``folder`` and returns its outputs
(paths relative to the folder, statistics, and a ``cost`` dict). Settings that cannot
change a result (threads, devices, batch sizes of inference, concurrency, timeouts,
retries) are left out of ``inputs``, so changing them reuses what is there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slimrec.backbones import backbone_revision
from slimrec.cluster import RayConfig
from slimrec.data.loaders import DataSource
from slimrec.data.loaders.embedded import EMBEDDED
from slimrec.errors import ConfigError
from slimrec.eval.order import OrderConfig
from slimrec.io import sha256_file
from slimrec.methods import Method
from slimrec.methods.slim.prompts import PromptConfig
from slimrec.pipeline.artifacts import Fit
from slimrec.pipeline.config import DataSection, RunConfig, TeacherSection
from slimrec.pipeline.stage import MANIFEST

Work = Callable[[Path], dict[str, Any]]

# Fields that do not change what a stage produces (kept out of its cache key).
TEACHER_RUNTIME = {
    "concurrency",
    "timeout_s",
    "max_retries",
    "backoff_base_s",
    "backoff_max_s",
    "api_key_env",
    "price_prompt_per_mtok",
    "price_completion_per_mtok",
    "batch_size",
    "device",
    "threads",
    "ray",
    "answer_cache",
}
STUDENT_RUNTIME = {"threads", "device", "eval_batch_size"}
# How fast the student's answers come, not what they are (engine and endpoint are keyed
# apart in reason_stage).
REASON_RUNTIME = {
    "batch_size",
    "refill",
    "share_prefix",
    "shard_size",
    "threads",
    "device",
    "endpoint",
    "engine",
    "ray",
}
TRAIN_RUNTIME = {"threads", "device"}
MAX_FINGERPRINT_FILES = 2000


def source_fingerprint(source: DataSource) -> list[tuple[str, int, str]] | str:
    """What identifies the raw data: an embedded name, or (name, size, sha256) of its files.

    By content, not modification time: a dataset copied to a fresh machine (or checked out
    again) keeps its keys, so a long run resumes there from the stages it committed, while a
    file edited in place changes the keys of the prepare stage and everything after it.
    Names are relative to the dataset's folder, so the same data found by name in another
    place (``$SLIMREC_DATA_DIR``) keeps its key; a path written in the config still counts.
    """
    if source.dataset in EMBEDDED and source.format in ("auto", "embedded"):
        return EMBEDDED[source.dataset].fingerprint
    from slimrec.data.loaders import resolve_path

    paths = [resolve_path(source.dataset)]
    if source.items:
        paths.append(Path(source.items).expanduser())
    found: list[tuple[str, int, str]] = []
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for f in files[:MAX_FINGERPRINT_FILES]:
            name = f.relative_to(root).as_posix() if root.is_dir() else f.name
            found.append((name, f.stat().st_size, sha256_file(f)))
    return found


def prepare_stage(data: DataSection) -> tuple[dict[str, Any], Work]:
    inputs = {"data": data.model_dump(mode="json"), "files": source_fingerprint(data.source)}

    def work(folder: Path) -> dict[str, Any]:
        from slimrec.data import prepare
        from slimrec.data.loaders import load_dataset

        prepared = prepare(load_dataset(data.source), data.prepare)
        prepared.save(folder / "data", overwrite=True)
        return {"data": "data", "name": prepared.name, "stats": prepared.stats()}

    return inputs, work


def teach_stage(teacher: TeacherSection, data_dir: Path, data_key: str, run_dir: Path):
    # drop_repeats changes only how structured answers render: keyed as their rendering
    inputs = {
        "data": data_key,
        "teacher": teacher.model_dump(mode="json", exclude=TEACHER_RUNTIME | {"drop_repeats"}),
    }
    engine = teacher.teacher_config().engine()
    if teacher.backend == "auto":  # the engine found here decides the weights (GGUF or fp32)
        inputs["teacher"]["backend"] = engine
    if teacher.structured:  # the schema and its rendering decide the rationales too
        from slimrec.methods.slim.structured import (
            DROP_REPEATS_VERSION,
            RENDER_VERSION,
            SCHEMA_VERSION,
        )

        inputs["schema"] = SCHEMA_VERSION
        if teacher.prompt.two_turns:
            from slimrec.methods.slim.structured import TWO_TURN_SCHEMA_VERSION

            inputs["schema"] = TWO_TURN_SCHEMA_VERSION
        inputs["render"] = RENDER_VERSION
        if teacher.drop_repeats:
            inputs["render"] += f"+{DROP_REPEATS_VERSION}"
    if teacher.prompt.candidates:  # what the pool offers decides the prompts
        from slimrec.methods.slim.candidate_pool import POOL_VERSION

        inputs["pool"] = POOL_VERSION

    def work(folder: Path) -> dict[str, Any]:
        from slimrec.llm.backends import engine_version
        from slimrec.methods.slim.teach import teach

        # The answer cache ($SLIMREC_CACHE/llm-answers.sqlite) makes an interrupted
        # teacher resume and a changed user count ask only for the new users.
        result = teach(
            data_dir,
            folder / "rationales.parquet",
            teacher.teacher_config(),
            n_users=teacher.n_users,
            seed=teacher.seed,
            cache=run_dir / "llm-answers.sqlite" if teacher.answer_cache == "run" else None,
        )
        usage = result.usage
        return {
            "rationales": "rationales.parquet",
            "users": result.users,
            "parsed": result.parsed,
            "parse_rate": round(result.parse_rate, 4),
            "engine": engine,
            "engine_version": engine_version(engine),
            "cost": {
                "teacher_answers": usage.answers,
                "teacher_prompt_tokens": usage.prompt_tokens,
                "teacher_completion_tokens": usage.completion_tokens,
                "teacher_cost_usd": usage.cost,
                "teacher_cached_answers": usage.cached_answers,
            },
        }

    return inputs, work


def distill_stage(config: RunConfig, rationales: Path, teach_key: str):
    student = config.student
    inputs = {
        "teach": teach_key,
        "student": student.model_dump(mode="json", exclude=STUDENT_RUNTIME),
    }

    def work(folder: Path) -> dict[str, Any]:
        from slimrec.methods.slim.student import distill

        results = distill(rationales, student, folder)
        keep = ("best_epoch", "valid_loss", "valid_loss_base", "epochs_run", "n_train", "train_s")
        return {"adapter": "adapter"} | {k: results.get(k) for k in keep}

    return inputs, work


def reason_stage(config: RunConfig, data_dir: Path, data_key: str, adapter: Path, distill_key: str):
    """The student writes a rationale for every user, asked exactly as it was trained."""
    section = config.reason
    inputs = {
        "data": data_key,
        "distill": distill_key,
        "prompt": config.teacher.prompt.model_dump(mode="json"),
        "reason": section.model_dump(mode="json", exclude=REASON_RUNTIME),
    }
    # Another engine or an endpoint may answer differently (other kernels, other weights
    # behind a name): each is its own stage; the default engine leaves old keys alone.
    if section.engine != "hf":
        inputs["engine"] = section.engine
    if section.endpoint is not None:
        inputs["endpoint"] = section.endpoint.model
    if section.structured:  # the pattern decides the answers, not only the switch
        from slimrec.methods.slim.structured import student_pattern

        inputs["pattern"] = student_pattern(config.teacher.prompt)
        if config.teacher.prompt.two_turns:  # a pattern per turn
            inputs["pattern"] = [student_pattern(config.teacher.prompt, turn) for turn in (1, 2)]
    if config.teacher.prompt.candidates:  # what the pool offers decides the prompts
        from slimrec.methods.slim.candidate_pool import POOL_VERSION

        inputs["pool"] = POOL_VERSION

    def work(folder: Path) -> dict[str, Any]:
        from slimrec.methods.slim.student.reason import ReasonConfig, reason

        cfg = ReasonConfig(
            base_model=config.student.base_model,
            adapter=str(adapter),
            prompt=config.teacher.prompt,
            endpoint=section.endpoint,  # the object: a dump would redact its URL
            **section.model_dump(exclude={"endpoint"}),
        )
        result = reason(data_dir, folder, cfg)
        return {
            "rationales": "rationales.parquet",
            "users": result["users"],
            "parsed": result["parsed"],
            "parse_rate": round(result["parse_rate"], 4),
            "tokens_per_s": result["tokens_per_s"],
            # Tokens generated in this run (shards finished before an interruption are
            # not counted again).
            "cost": {"student_tokens": result["completion_tokens"]},
        }

    return inputs, work


def reuse_stage(file: Path, prompt: PromptConfig, data_dir: Path, data_key: str):
    """Rationales written elsewhere, given to the users whose prompts they answer."""
    # By content: the same file elsewhere (a fresh clone) keeps the key, an edited one not.
    inputs = {"data": data_key, "file": sha256_file(file), "prompt": prompt.model_dump(mode="json")}

    def work(folder: Path) -> dict[str, Any]:
        from slimrec.data import PreparedDataset
        from slimrec.io import atomic_path
        from slimrec.methods.slim.reuse import read_rationales, reuse_rationales

        dataset = PreparedDataset.load(data_dir)
        reused = reuse_rationales(read_rationales(file), dataset, prompt)
        if not reused.matched_users:
            raise ConfigError(
                f"none of its {reused.offered:,} prompts is asked of a user here",
                where=file,
                fix="use the data and teacher.prompt settings of the run that wrote it",
            )
        with atomic_path(folder / "rationales.parquet") as tmp:
            reused.rows.to_parquet(tmp, index=False)
        return {
            "rationales": "rationales.parquet",
            "users": reused.matched_users,
            "of_users": dataset.n_users,
            "offered": reused.offered,
            "matched_prompts": reused.matched_prompts,
            "parse_rate": round(float(reused.rows["parsed"].mean()), 4),
        }

    return inputs, work


def item_embed_stage(
    encoder: str,
    encoder_id: str,
    data_dir: Path,
    data_key: str,
    *,
    device: str = "auto",
    ray: RayConfig | None = None,
):
    inputs = {"data": data_key, "encoder": encoder_id}  # the device is left out: same vectors

    def work(folder: Path) -> dict[str, Any]:
        import numpy as np

        from slimrec.data import PreparedDataset
        from slimrec.text import TextEncoder, item_embedding_table
        from slimrec.text.encoder import default_cache

        items = PreparedDataset.load(data_dir).items
        encoder_ = TextEncoder(encoder, cache=default_cache(), device=device, ray=ray)
        table = item_embedding_table(items, encoder_)
        np.save(folder / "items.npy", table)
        return {"table": "items.npy", "shape": list(table.shape)}

    return inputs, work


def user_embed_stage(
    encoder: str,
    encoder_id: str,
    n_users: int,
    rationales: Path,
    source_key: str,
    field: str,
    *,
    device: str = "auto",
    ray: RayConfig | None = None,
):
    inputs = {"rationales": source_key, "field": field, "encoder": encoder_id, "n_users": n_users}

    def work(folder: Path) -> dict[str, Any]:
        import numpy as np
        import pandas as pd

        from slimrec.methods.slim import user_text_table
        from slimrec.text import TextEncoder
        from slimrec.text.encoder import default_cache

        encoder_ = TextEncoder(encoder, cache=default_cache(), device=device, ray=ray)
        table, missing = user_text_table(pd.read_parquet(rationales), n_users, encoder_, field)
        np.save(folder / "users.npy", table)
        return {"table": "users.npy", "shape": list(table.shape), "users_without_text": missing}

    return inputs, work


def order_stage(config: OrderConfig, fits: list[Fit], data_dir: Path, data_key: str):
    """The order-sensitivity diagnostic of every fit (``fits``: the runner's ``Fit`` list)."""
    inputs = {
        "data": data_key,
        "fits": [f.record.key for f in fits],
        "order": config.model_dump(mode="json", exclude_none=True),  # keys before `window`
        # 2: each model's own window (LLM-SRec and DELRec read fewer items than max_len;
        # version 1 shuffled max_len items, so they read other items, not just another order).
        "version": 2,
    }

    def work(folder: Path) -> dict[str, Any]:
        from slimrec.pipeline.diagnose import write_order

        table, rows = write_order(folder, fits, data_dir, config)
        return {"table": table.name, "json": table.with_suffix(".json").name, "n": len(rows)}

    return inputs, work


def earlier_fits(folder: Path) -> tuple[Path, ...]:
    """The other finished stage folders of this fit's name (backbone, method, seed) in its
    run: the same fit under other settings, which it may go on from where only the loop's
    settings differ (more epochs, another patience, other test protocols). Finished ones
    only: a fit still training in another process is not read while it writes."""
    stem = folder.name.rsplit("-", 1)[0]
    return tuple(
        sorted(
            other
            for other in folder.parent.glob(f"{stem}-*")
            if other != folder
            and re.fullmatch(rf"{re.escape(stem)}-[0-9a-f]+", other.name)
            and (other / MANIFEST).is_file()
        )
    )


def fit_stage(
    method: Method,
    options: dict[str, Any],
    train: Any,
    data_dir: Path,
    data_key: str,
    items: tuple[Path, str] | None,
    users: tuple[Path, str] | None,
    teacher: tuple[Path, str] | None = None,
):
    """One method, backbone and seed trained into the stage folder.

    ``options``: the run's settings of the method (none: its registered defaults);
    ``items`` / ``users``: (table file, stage key) of the text embeddings the method
    reads, or ``None`` when it reads none; ``teacher``: (trained run folder, fit stage
    key) of the run the method learns from.
    """
    inputs = {
        "data": data_key,
        "items": items[1] if items else None,
        "users": users[1] if users else None,
        "method": method.name,
        "train": train.model_dump(mode="json", exclude=TRAIN_RUNTIME),
    }
    if (revision := backbone_revision(train.backbone)) > 1:  # see SequentialRecommender
        inputs["backbone_revision"] = revision
    inputs |= method.stage_inputs()
    if options:  # fits with a method's defaults keep their keys
        inputs["options"] = options
    if teacher:
        inputs["teacher"] = teacher[1]

    def work(folder: Path) -> dict[str, Any]:
        import numpy as np

        from slimrec.data import PreparedDataset
        from slimrec.methods import FitContext

        context = FitContext(
            PreparedDataset.load(data_dir),
            train,
            item_text=np.load(items[0]) if items else None,
            user_text=np.load(users[0]) if users else None,
            teacher=teacher[0] if teacher else None,
            warm_starts=earlier_fits(folder),
        )
        results = method.fit(context, folder)
        keep = ("best_epoch", "epochs_run", "valid", "test")
        warm = {"warm_start": results["warm_start"]} if "warm_start" in results else {}
        return {"run": "."} | {k: results.get(k) for k in keep} | warm

    return inputs, work
