"""StageRunner: keys from inputs, manifests mark finished stages, interrupted ones resume."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pytest
from tests.memory_fixtures import FRAGMENT_HEAP

from slimrec.pipeline.stage import MANIFEST, STAGES_FILE, StageRunner, stage_key


def counting_work(calls: list[Path], value: int = 1):
    def work(folder: Path) -> dict:
        calls.append(folder)
        (folder / "artifact.txt").write_text(str(value))
        return {"artifact": "artifact.txt", "cost": {"teacher_prompt_tokens": 10 * value}}

    return work


def test_finished_stage_is_reused_and_changed_inputs_run_again(tmp_path):
    calls: list[Path] = []
    first = StageRunner(tmp_path, echo=lambda _: None)
    rec = first.run("teach", {"data": "abc", "n": 1}, counting_work(calls))
    assert rec.status == "ran" and len(calls) == 1
    assert rec.outputs == {"artifact": "artifact.txt"}  # the cost is reported apart
    assert rec.cost == {"teacher_prompt_tokens": 10}
    manifest = json.loads((tmp_path / rec.folder / MANIFEST).read_text())
    assert manifest["key"] == rec.key == stage_key("teach", {"data": "abc", "n": 1})

    again = StageRunner(tmp_path, echo=lambda _: None)
    rec2 = again.run("teach", {"data": "abc", "n": 1}, counting_work(calls))
    assert rec2.status == "cached" and len(calls) == 1
    assert rec2.cost == rec.cost and rec2.outputs == rec.outputs
    assert rec2.compute_seconds == rec.compute_seconds

    rec3 = again.run("teach", {"data": "abc", "n": 2}, counting_work(calls, 2))
    assert rec3.status == "ran" and rec3.key != rec.key and rec3.folder != rec.folder
    assert (tmp_path / rec.folder / "artifact.txt").read_text() == "1"  # old one untouched


def test_interrupted_stage_continues_in_its_folder(tmp_path):
    seen: list[Path] = []

    def crashing(folder: Path) -> dict:
        seen.append(folder)
        (folder / "half.txt").write_text("half")
        raise KeyboardInterrupt

    runner = StageRunner(tmp_path, echo=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        runner.run("distill", {"x": 1}, crashing)
    assert not (seen[0] / MANIFEST).exists()  # not finished

    def resuming(folder: Path) -> dict:
        seen.append(folder)
        return {"resumed_from": (folder / "half.txt").read_text()}

    rec = StageRunner(tmp_path, echo=lambda _: None).run("distill", {"x": 1}, resuming)
    assert rec.status == "ran" and seen[0] == seen[1]
    assert rec.outputs == {"resumed_from": "half"}


def test_a_finished_stage_without_what_the_run_needs_starts_again_from_an_empty_folder(tmp_path):
    calls: list[Path] = []
    runner = StageRunner(tmp_path, echo=lambda _: None)
    rec = runner.run("fit/sasrec/backbone/seed0", {}, counting_work(calls))
    folder = tmp_path / rec.folder
    (folder / "weights.bin").write_text("w")
    has_weights = lambda f: (f / "weights.bin").is_file()  # noqa: E731

    kept = runner.run("fit/sasrec/backbone/seed0", {}, counting_work(calls), complete=has_weights)
    assert kept.status == "cached" and len(calls) == 1

    (folder / "weights.bin").unlink()  # the record travelled, the weights did not
    # Not needed by this run: the record is enough.
    assert runner.run("fit/sasrec/backbone/seed0", {}, counting_work(calls)).status == "cached"
    again = runner.run("fit/sasrec/backbone/seed0", {}, counting_work(calls), complete=has_weights)
    assert again.status == "ran" and len(calls) == 2 and calls[1] == folder
    assert (folder / MANIFEST).is_file() and (folder / "artifact.txt").read_text() == "1"


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl locks on Windows")
def test_a_stage_another_worker_computes_is_skipped_by_try_run_and_reused_by_run(tmp_path):
    """Two runners on one folder (two processes in real use; threads here, since flock
    locks belong to open files): the stage is computed once, by whoever took it first."""
    started, go, waiting = threading.Event(), threading.Event(), threading.Event()

    def slow_work(folder: Path) -> dict:
        started.set()
        assert go.wait(120)
        return {"by": "first"}

    first = StageRunner(tmp_path, echo=lambda _: None)
    second = StageRunner(tmp_path, echo=lambda line: "waiting" in line and waiting.set())
    done: dict[str, object] = {}
    computing = threading.Thread(target=lambda: done.update(a=first.run("fit", {}, slow_work)))
    computing.start()
    assert started.wait(120)

    calls: list[Path] = []
    assert second.try_run("fit", {}, counting_work(calls)) is None  # busy: back later
    assert second.try_run("other", {}, counting_work(calls)).status == "ran"  # not busy
    awaiting = threading.Thread(target=lambda: done.update(b=second.run("fit", {}, dict)))
    awaiting.start()
    assert waiting.wait(120)  # blocked on the first runner's lock, not computing
    go.set()
    computing.join(120)
    awaiting.join(120)
    assert done["a"].status == "ran" and done["b"].status == "cached"
    assert done["b"].outputs == {"by": "first"} and len(calls) == 1
    assert second.try_run("fit", {}, counting_work(calls)).status == "cached"


def test_a_stage_records_the_machine_that_computed_it(tmp_path):
    from slimrec.machine import describe

    runner = StageRunner(tmp_path, echo=lambda _: None)
    rec = runner.run("prepare", {}, lambda folder: {})
    assert rec.machine == describe() and "cores" in rec.machine
    assert StageRunner(tmp_path, echo=lambda _: None).run("prepare", {}, dict).machine == describe()


def test_corrupt_manifest_means_not_finished(tmp_path):
    calls: list[Path] = []
    runner = StageRunner(tmp_path, echo=lambda _: None)
    rec = runner.run("prepare", {}, counting_work(calls))
    (tmp_path / rec.folder / MANIFEST).write_text("{not json")
    assert runner.run("prepare", {}, counting_work(calls)).status == "ran"
    assert len(calls) == 2


def test_stages_file_and_table(tmp_path):
    runner = StageRunner(tmp_path, echo=lambda _: None)
    runner.run("prepare", {}, lambda folder: {})
    runner.run("fit/sasrec/slim/seed0", {"a": 1}, lambda folder: {"cost": {"student_tokens": 5}})
    saved = json.loads((tmp_path / STAGES_FILE).read_text())
    assert [s["name"] for s in saved["stages"]] == ["prepare", "fit/sasrec/slim/seed0"]
    assert saved["stages"][1]["cost"] == {"student_tokens": 5}
    assert {"status", "seconds", "compute_seconds", "key", "folder"} <= set(saved["stages"][0])
    assert runner.records[1].kind == "fit"
    assert "/" not in Path(runner.records[1].folder).name  # one folder, not nested ones
    table = runner.table()
    assert "fit/sasrec/slim/seed0" in table and "ran" in table and "total" in table


def test_fit_stage_key_follows_the_backbone_revision(tmp_path, monkeypatch):
    """A backbone whose defaults changed (revision > 1) gets a new fit-stage key."""
    from slimrec.backbones import SASRec
    from slimrec.methods import get_method
    from slimrec.pipeline.stages import fit_stage
    from slimrec.training import TrainConfig

    def key(backbone: str, options: dict | None = None) -> str:
        method = get_method("backbone", **(options or {}))
        train = TrainConfig(backbone=backbone)
        inputs, _ = fit_stage(method, options or {}, train, tmp_path, "d", None, None)
        return stage_key("fit", inputs)

    gru, sas = key("gru4rec"), key("sasrec")
    assert key("sasrec", {"item_text": False}) != sas  # a run's own settings are its own fit
    monkeypatch.setattr(SASRec, "revision", SASRec.revision + 1)
    assert key("gru4rec") == gru and key("sasrec") != sas


def test_prepare_key_follows_the_data_content_not_its_copy_or_mtime(tmp_path, monkeypatch):
    """A dataset copied elsewhere (a fresh machine) keeps its key; an edited one does not."""
    import os
    import shutil

    from tests.run_fixtures import write_csv

    from slimrec.pipeline.config import DataSection
    from slimrec.pipeline.stages import prepare_stage

    here = tmp_path / "here"
    here.mkdir()
    ratings, items = write_csv(here)
    there = tmp_path / "there"
    shutil.copytree(here, there)
    for f in there.iterdir():
        os.utime(f, (1, 1))  # a copy made at another time

    def key(folder: Path) -> str:
        monkeypatch.chdir(folder)  # the config names the files relative to the folder
        section = DataSection.model_validate(
            {"source": {"dataset": ratings.name, "items": items.name}}
        )
        return stage_key("prepare", prepare_stage(section)[0])

    assert key(there) == key(here)
    with items.open("a") as f:
        f.write("sku999,Extra title\n")
    assert key(here) != key(there)


def test_the_reason_stage_is_keyed_by_where_the_student_runs_not_how_fast(tmp_path, monkeypatch):
    """Another engine or endpoint may answer differently: its own stage; batching is not.
    The endpoint reaches the student with its real URL (dumps redact credentials)."""
    from slimrec.config import load_yaml
    from slimrec.methods.slim.student import reason as reason_module
    from slimrec.pipeline.config import RunConfig
    from slimrec.pipeline.stages import reason_stage

    quickstart = load_yaml(RunConfig, Path(__file__).parents[2] / "configs" / "quickstart.yaml")

    def stage(**reason) -> tuple[str, object]:
        config = quickstart.model_copy(
            update={"reason": quickstart.reason.model_copy(update=reason)}
        )
        inputs, work = reason_stage(config, tmp_path, "data", tmp_path / "adapter", "distill")
        return stage_key("reason", inputs), work

    from slimrec.llm.backends import EndpointConfig

    url = "http://user:secret@127.0.0.1:9/v1"
    here = stage()[0]
    assert stage(batch_size=7)[0] == here
    assert stage(engine="vllm")[0] != here
    at_a = stage(endpoint=EndpointConfig(base_url=url, model="a"))
    assert at_a[0] not in (here, stage(endpoint=EndpointConfig(base_url=url, model="b"))[0])
    assert stage(endpoint=EndpointConfig(base_url=url, model="a", concurrency=2))[0] == at_a[0]

    seen = []
    fake = {"users": 0, "parsed": 0, "parse_rate": 0.0, "tokens_per_s": 0.0}
    fake |= {"completion_tokens": 0}
    monkeypatch.setattr(reason_module, "reason", lambda data, out, cfg: seen.append(cfg) or fake)
    at_a[1](tmp_path)
    assert seen[0].endpoint.base_url == url


def test_a_structured_teacher_keys_its_stage_by_the_schema_version(tmp_path, monkeypatch):
    from slimrec.methods.slim import structured
    from slimrec.pipeline.config import TeacherSection
    from slimrec.pipeline.stages import teach_stage

    def key(**teacher) -> str:
        inputs = teach_stage(TeacherSection(**teacher), tmp_path, "data", tmp_path)[0]
        return stage_key("teach", inputs)

    plain, grammar = key(backend="llamacpp"), key(backend="llamacpp", structured=True)
    monkeypatch.setattr(structured, "SCHEMA_VERSION", "slim-json-v2")
    assert key(backend="llamacpp") == plain and key(backend="llamacpp", structured=True) != grammar


def test_dropping_repeats_rekeys_structured_answers_only_and_off_keeps_earlier_keys(tmp_path):
    from slimrec.pipeline.config import TeacherSection
    from slimrec.pipeline.stages import teach_stage

    def inputs(**teacher) -> dict:
        section = TeacherSection(backend="llamacpp", **teacher)
        return teach_stage(section, tmp_path, "d", tmp_path)[0]

    structured = inputs(structured=True)
    kept = inputs(structured=True, drop_repeats=False)
    assert stage_key("teach", structured) != stage_key("teach", kept)
    assert kept["render"] == "closed-v1" and "drop_repeats" not in kept["teacher"]  # as before
    assert inputs() == inputs(drop_repeats=False)  # free text is not rendered


# A stage that leaves ~380 MiB freed in the middle of glibc's heap, in an interpreter of
# its own.
FRAGMENTING_STAGE = (
    FRAGMENT_HEAP
    + """
import sys
from slimrec.memory import resident_bytes
from slimrec.pipeline.stage import StageRunner
kept, peak = [], []

def work(folder):
    kept.extend(fragment_heap())
    peak.append(resident_bytes())
    return {}

StageRunner(sys.argv[1], echo=lambda _: None).run("fragment", {}, work)
print(peak[0], resident_bytes())
"""
)


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's heap, read from /proc")
def test_what_a_stage_freed_goes_back_to_the_os_before_the_next_stage(tmp_path):
    """The games run held 14 GB after distilling, beside the vLLM server of the next stage."""
    import subprocess

    from slimrec.memory import glibc_malloc_trim

    if glibc_malloc_trim() is None:
        pytest.skip("glibc's malloc_trim only")
    out = subprocess.run(
        [sys.executable, "-c", FRAGMENTING_STAGE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    peak, after = map(int, out.stdout.split())
    assert peak - after > 300 << 20, (peak, after)
