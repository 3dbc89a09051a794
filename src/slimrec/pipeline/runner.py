"""``slimrec run``: every SLIM stage in order, each cached by the hash of its inputs.

prepare -> teach -> distill -> reason -> embed (items; users' rationales per source and
field) -> fit (each backbone x method x seed) -> report. Stages that no method needs are
skipped (no LLM at all for ``backbone`` / ``backbone+``; no student for ``slim-`` alone;
with ``reason.rationales_file``, the student's rationales are reused from that file
instead of written: methods/slim/reuse.py).
A re-run does only what changed; an interrupted run continues where it stopped.
Several ``slimrec run`` processes on one config and run folder share the work: each fit
is trained by whichever process takes it first (stage.py's locks); the others move on
to the next fit and reuse it once it has finished.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from slimrec.config import config_hash, load_yaml, save_yaml
from slimrec.errors import ConfigError
from slimrec.eval.order import OrderConfig
from slimrec.io import atomic_path
from slimrec.methods import Method, get_method, has_model
from slimrec.pipeline import stages
from slimrec.pipeline.artifacts import Fit
from slimrec.pipeline.config import RunConfig
from slimrec.pipeline.outputs import write_outputs
from slimrec.pipeline.stage import StageRecord, StageRunner, stage_key


@dataclass
class RunOutcome:
    run_dir: Path
    records: list[StageRecord]
    table: str  # the stage table, as printed

    @property
    def report(self) -> Path:
        return self.run_dir / "report.md"

    def status(self) -> dict[str, str]:
        return {r.name: r.status for r in self.records}


def _holds(file: Path, config: RunConfig) -> bool:
    """Whether ``file`` is already this config (in whatever words)."""
    try:
        return config_hash(load_yaml(RunConfig, file)) == config_hash(config)
    except ConfigError:
        return False


def must(fit: Fit | None) -> Fit:
    """A fit asked for with waiting allowed, which therefore exists."""
    assert fit is not None
    return fit


def run_pipeline(
    config: RunConfig, run_dir: str | Path, *, echo: Callable[[str], None] = print
) -> RunOutcome:
    """Run (or continue, or reuse) every stage of ``config`` in ``run_dir``."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not _holds(run_dir / "config.yaml", config):  # a committed one keeps its comments
        save_yaml(config, run_dir / "config.yaml")
    runner = StageRunner(run_dir, echo=echo)

    def path(record: StageRecord, output: str) -> Path:
        return run_dir / record.folder / record.outputs[output]

    prep = runner.run("prepare", *stages.prepare_stage(config.data))
    data_dir = path(prep, "data")
    n_users = prep.outputs["stats"]["users"]

    rationales: dict[str, tuple[Path, str]] = {}  # source -> (file, stage key)
    needed = config.rationales_needed()
    if "teacher" in needed:
        teach = runner.run(
            "teach", *stages.teach_stage(config.teacher, data_dir, prep.key, run_dir)
        )
        rationales["teacher"] = (path(teach, "rationales"), teach.key)
    if "student" in needed and config.reason.rationales_file is not None:
        reuse = runner.run(
            "reuse/student",
            *stages.reuse_stage(
                config.reason.rationales_file, config.teacher.prompt, data_dir, prep.key
            ),
        )
        rationales["student"] = (path(reuse, "rationales"), reuse.key)
    elif "student" in needed:
        teach_file, teach_key = rationales["teacher"]
        distill_inputs, distill_work = stages.distill_stage(config, teach_file, teach_key)
        distill_key = stage_key("distill", distill_inputs)
        adapter = runner.folder("distill", distill_key) / "adapter"
        reason_inputs, reason_work = stages.reason_stage(
            config, data_dir, prep.key, adapter, distill_key
        )
        # Finished rationales travel in git without the adapter (bench/runs/): a fresh
        # clone reuses them without retraining the student that wrote them.
        if runner.finished("distill", distill_inputs) or not runner.finished(
            "reason", reason_inputs
        ):
            runner.run("distill", distill_inputs, distill_work)
        else:
            echo("[distill] skipped: the student's rationales are written, its adapter absent")
        reason = runner.run("reason", reason_inputs, reason_work)
        rationales["student"] = (path(reason, "rationales"), reason.key)

    items = None
    encoder_key = None
    if config.needs_item_text() or config.text_fields():
        from slimrec.text.encoder import encoder_id

        encoder_key = encoder_id(config.encoder)
    if config.needs_item_text():
        rec = runner.run(
            "embed/items",
            *stages.item_embed_stage(
                config.encoder,
                str(encoder_key),
                data_dir,
                prep.key,
                device=config.encoder_device,
                ray=config.encoder_ray,
            ),
        )
        items = (path(rec, "table"), rec.key)
    user_tables: dict[tuple[str, str], tuple[Path, str]] = {}
    for source, field in config.text_fields():
        file, key = rationales[source]
        rec = runner.run(
            f"embed/{source}/{field}",
            *stages.user_embed_stage(
                config.encoder,
                str(encoder_key),
                n_users,
                file,
                key,
                field,
                device=config.encoder_device,
                ray=config.encoder_ray,
            ),
        )
        user_tables[(source, field)] = (path(rec, "table"), rec.key)

    done: dict[tuple[str | None, str, int], Fit] = {}
    # A fit's record (results, per-user metrics) may travel without its weights (a long
    # run's commits, bench/runs/README.md). Weights are asked for only where a stage still
    # to run loads them (a method that learns from the fit, the order diagnostic); there a
    # fit without them is trained again, in the same folder under the same key.

    def fit(
        method: Method, backbone: str, seed: int, *, weights: bool = False, wait: bool = True
    ) -> Fit | None:
        """Train (or reuse) one method on one backbone and seed, its teacher first.

        ``wait=False``: ``None`` where another process is computing it or its teacher.
        """
        needs = method.needs()
        on = backbone if needs.per_backbone else None
        known = done.get((on, method.name, seed))
        if known is not None and (not weights or has_model(known.folder)):
            return known
        teacher = None
        if needs.teacher:
            listed = needs.teacher in config.methods
            teacher_method = config.method(needs.teacher) if listed else get_method(needs.teacher)
            trained = fit(teacher_method, backbone, seed, wait=wait)
            if trained is None:
                return None
            teacher = (trained.folder, trained.record.key)
        train = config.train.model_copy(
            update={
                "backbone": backbone,
                "seed": seed,
                "test_protocols": config.eval.protocols,
                "sampled_negatives": config.eval.negatives,
                "ks": config.eval.ks,
                # Text is fused only where the rationale has not seen the target.
                "rationale_holdout": config.teacher.prompt.hold_out_last if needs.user_text else 0,
                "rationale_items": config.teacher.prompt.max_items if needs.items_read else 0,
            }
        )
        name = f"fit/{on}/{method.name}/seed{seed}" if on else f"fit/{method.name}/seed{seed}"
        inputs, work = stages.fit_stage(
            method,
            config.method_options.get(method.name, {}),
            train,
            data_dir,
            prep.key,
            items if needs.item_text else None,
            user_tables[needs.user_text] if needs.user_text else None,
            teacher,
        )
        unfinished = needs.teacher and not runner.finished(name, inputs)
        # the teacher's weights, which this fit will load
        if unfinished and fit(teacher_method, backbone, seed, weights=True, wait=wait) is None:
            return None
        run = runner.run if wait else runner.try_run
        rec = run(name, inputs, work, complete=has_model if weights else None)
        if rec is None:
            return None
        done[(on, method.name, seed)] = Fit(
            on, method.name, seed, run_dir / rec.folder / rec.outputs["run"], rec
        )
        return done[(on, method.name, seed)]

    planned = [
        (method, backbone, seed)
        for backbone in config.backbones
        for method in config.chosen_methods()
        # no backbone in it: fitted once, not once per backbone
        if method.needs().per_backbone or backbone == config.backbones[0]
        for seed in config.seeds
    ]
    for plan in planned:  # first those no other process is training...
        fit(*plan, wait=False)
    fits = [must(fit(*plan)) for plan in planned]  # ...then the rest, once they finish

    for perturbation in config.diagnose.order:
        order = OrderConfig(perturbation=perturbation, repeats=config.diagnose.repeats)
        name = f"diagnose/order-{perturbation}"
        inputs, work = stages.order_stage(order, fits, data_dir, prep.key)
        if not runner.finished(name, inputs):  # it reloads every model
            fits = [must(fit(*plan, weights=True)) for plan in planned]
            inputs, work = stages.order_stage(order, fits, data_dir, prep.key)
        runner.run(name, inputs, work)

    upstream = list(runner.records)
    whole = config_hash(config)

    def report_work(folder: Path) -> dict:
        return write_outputs(
            folder,
            config=config,
            config_hash=whole,
            run_dir=run_dir,
            data_dir=data_dir,
            dataset_stats=prep.outputs["stats"],
            fits=fits,
            records=upstream,
        )

    inputs = {
        # sorted: processes sharing the run finish its stages in different orders
        "stages": sorted(r.key for r in upstream),
        "name": config.name,
        "report": config.report.model_dump(mode="json"),
        "seeds": config.seeds,
        "backbones": config.backbones,
    }
    report = runner.run("report", inputs, report_work)
    for file in report.outputs["files"]:
        with atomic_path(run_dir / file) as tmp:
            shutil.copyfile(run_dir / report.folder / file, tmp)
    return RunOutcome(run_dir, runner.records, runner.table())
