"""``slimrec run`` end to end on tiny real models: artifacts, full cache, partial re-run.

Teacher and student are the tiny random Llama of tests/tiny_lm.py through the local hf
backend; the data is a small CSV written here and read through slimrec.data like a
user's file. One seed, two epochs: the point is the pipeline, not the numbers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tests.cli_helpers import run as run_cli
from tests.run_fixtures import tiny_config, write_csv

from slimrec.errors import ConfigError
from slimrec.methods import load_model
from slimrec.pipeline import RunConfig, run_pipeline
from slimrec.pipeline.artifacts import RunArtifacts, recorded_fits

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["backbone", "backbone+", "slim-", "slim", "slim-step1", "text-matching"]
STUDENT_SIDE = {"distill", "reason", "embed/student/response", "embed/student/step1"}
STUDENT_FITS = {"fit/sasrec/slim/seed0", "fit/sasrec/slim-step1/seed0", "fit/text-matching/seed0"}


@pytest.fixture
def setup(tmp_path, lively_lm, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ratings, items = write_csv(tmp_path)
    return tmp_path, ratings, items, lively_lm


def test_whole_pipeline_then_cached_then_only_downstream(setup, capsys):
    tmp_path, ratings, items, lm = setup
    config_file = tmp_path / "ci-tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(ratings, items, lm)))
    run_dir = tmp_path / "run"

    code, out, err = run_cli(["run", "--config", str(config_file), "--out", str(run_dir)], capsys)
    assert code == 0, err
    assert "report: " in out and "ran" in out

    # -- every artifact ------------------------------------------------------------------
    stages = json.loads((run_dir / "stages.json").read_text())["stages"]
    names = [s["name"] for s in stages]
    assert names[:4] == ["prepare", "teach", "distill", "reason"]
    assert names[-1] == "report"
    assert {s["status"] for s in stages} == {"ran"}
    for s in stages:
        assert (run_dir / s["folder"] / "stage.json").is_file(), s["name"]
    teach = next(s for s in stages if s["name"] == "teach")
    assert teach["cost"]["teacher_answers"] == 12
    assert teach["cost"]["teacher_completion_tokens"] > 0
    reason = next(s for s in stages if s["name"] == "reason")
    assert reason["cost"]["student_tokens"] > 0

    report = (run_dir / "report.md").read_text()
    assert (
        "| model | metric | Backbone | Backbone+ | SLIM- | SLIM | Improv. (SLIM vs Backbone+) "
        "| Improv. (Backbone+ vs Backbone) |" in report
    )
    assert report.count("| sasrec | ndcg@10 |") == 4  # main + ablation, once per protocol
    for needle in ("## ID-agnostic", "SLIM-Step1", "## Cost of each stage", "](popularity.png)"):
        assert needle in report, needle
    by_history = report.split("## By history length", 1)[1].split("\n## ", 1)[0]
    assert "| sasrec | SLIM vs Backbone+ | " in by_history  # from the fits' per-user files
    assert "config hash: `" in report and "cores" in report
    rows = [ln for ln in report.splitlines() if ln.startswith(("| teacher (", "| student ("))]
    assert len(rows) == 2 and "| echoing the instructions | five distinct categories |" in report
    assert all(ln.count("%") >= 6 for ln in rows)  # parsed, cap, repeats, echo, distinct, ...

    results = json.loads((run_dir / "results.json").read_text())
    runs = results["results"]["runs"]
    assert {(r["method"], r["protocol"]) for r in runs} == {
        (m if m == "text-matching" else f"sasrec/{m}", p)
        for m in METHODS
        for p in ("full", "sampled")
    }
    assert all(0.0 <= r["metrics"]["ndcg@10"] <= 1.0 for r in runs)
    shares = results["popularity"]["sasrec"]
    assert set(shares) == {*METHODS, "test targets"}
    # each share is rounded to 6 digits, so a sum may be off by n_groups * 5e-7
    assert all(abs(sum(v) - 1.0) < 1e-5 for v in shares.values()), shares
    assert (run_dir / "popularity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Every fit stage of the folder, found from its manifest alone (bench/fit_pairs.py).
    recorded = {(f.label, f.seed, f.record.key) for f in recorded_fits(run_dir)}
    assert recorded == {(f.label, f.seed, f.record.key) for f in RunArtifacts(run_dir).fits()}

    # -- the same config again: everything cached ----------------------------------------
    cfg = RunConfig.model_validate(tiny_config(ratings, items, lm))
    again = run_pipeline(cfg, run_dir, echo=lambda _: None)
    assert set(again.status().values()) == {"cached"}
    assert again.status().keys() == set(names)

    # -- a fit's record travelled without its weights (bench/runs/ on a fresh clone) -----
    fit_folders = {s["name"]: run_dir / s["folder"] for s in stages if s["name"].startswith("fit/")}
    backbone = fit_folders["fit/sasrec/backbone/seed0"]
    (backbone / "best.pt").unlink()
    report_folder = run_dir / next(s["folder"] for s in stages if s["name"] == "report")
    shutil.rmtree(report_folder)
    travelled = run_pipeline(cfg, run_dir, echo=lambda _: None).status()
    assert {name for name, status in travelled.items() if status == "ran"} == {"report"}
    assert json.loads((run_dir / "results.json").read_text())["results"] == results["results"]
    assert "their weights did not): sasrec/backbone." in (run_dir / "report.md").read_text()
    with pytest.raises(ConfigError, match="delete this folder and run `slimrec run` again"):
        load_model(backbone)
    # The order diagnostic reloads every model: the one without weights is fitted again.
    ordered = RunConfig.model_validate(
        tiny_config(ratings, items, lm) | {"diagnose": {"order": ["reverse"], "repeats": 1}}
    )
    refit = run_pipeline(ordered, run_dir, echo=lambda _: None).status()
    assert refit["fit/sasrec/backbone/seed0"] == "ran" and refit["diagnose/order-reverse"] == "ran"
    assert refit["fit/sasrec/slim/seed0"] == "cached"
    assert (backbone / "best.pt").is_file()
    # Its diagnostic done, the run asks for no weights again.
    for folder in fit_folders.values():
        (folder / "best.pt").unlink()
    assert set(run_pipeline(ordered, run_dir, echo=lambda _: None).status().values()) == {"cached"}
    # No model here at all: no long-tail figure, every fit named.
    shutil.rmtree(report_folder)
    run_pipeline(cfg, run_dir, echo=lambda _: None)
    report = (run_dir / "report.md").read_text()
    assert "](popularity.png)" not in report and "sasrec/backbone, sasrec/backbone+," in report
    assert json.loads((run_dir / "results.json").read_text())["popularity"] == {}

    # -- the student's rationales kept, its adapter gone (a fresh clone of bench/runs/) --
    distill = next(s for s in stages if s["name"] == "distill")
    shutil.rmtree(run_dir / distill["folder"])
    clone = run_pipeline(cfg, run_dir, echo=lambda _: None).status()
    assert "distill" not in clone and clone["reason"] == "cached"
    assert {name for name, status in clone.items() if status == "ran"} <= {"report"}

    # -- one student value changed: the student's side and what reads it run again -------
    changed = RunConfig.model_validate(tiny_config(ratings, items, lm, student_epochs=2))
    third = run_pipeline(changed, run_dir, echo=lambda _: None).status()
    ran = {name for name, status in third.items() if status == "ran"}
    assert ran == STUDENT_SIDE | STUDENT_FITS | {"report"}
    assert third["teach"] == third["prepare"] == third["embed/items"] == "cached"
    assert third["fit/sasrec/slim-/seed0"] == "cached"  # teacher rationales only


def test_a_fit_that_another_method_learns_from_is_refitted_only_for_a_fit_still_to_run(setup):
    """LLM-SRec learns from the SASRec fit's model: with LLM-SRec finished, the SASRec
    record alone will do; once LLM-SRec must fit again, SASRec is fitted again first."""
    tmp_path, ratings, items, lm = setup
    llm_srec = {"llm": str(lm), "rep_dim": 8, "head_hidden": 16, "history_items": 4}
    config = tiny_config(ratings, items, lm, methods=["backbone", {"llm-srec": llm_srec}])
    run_dir = tmp_path / "run"
    first = run_pipeline(RunConfig.model_validate(config), run_dir, echo=lambda _: None)
    sasrec = run_dir / next(
        r.folder for r in first.records if r.name == "fit/sasrec/backbone/seed0"
    )
    (sasrec / "best.pt").unlink()

    again = run_pipeline(RunConfig.model_validate(config), run_dir, echo=lambda _: None)
    assert set(again.status().values()) == {"cached"} and not (sasrec / "best.pt").exists()

    config["methods"][1]["llm-srec"]["rep_dim"] = 4
    changed = run_pipeline(RunConfig.model_validate(config), run_dir, echo=lambda _: None)
    assert changed.status()["fit/sasrec/backbone/seed0"] == "ran"
    assert changed.status()["fit/sasrec/llm-srec/seed0"] == "ran"
    assert (sasrec / "best.pt").is_file()
    assert [r.name for r in changed.records].count("fit/sasrec/backbone/seed0") == 1


def test_a_fit_asked_for_more_epochs_goes_on_from_the_fit_made_with_fewer(setup):
    """Raising a method's epochs (or the run's) makes a new fit stage, which starts from the
    shorter fit's last checkpoint and ends where a fit from scratch does."""
    tmp_path, ratings, items, lm = setup
    llm_srec = {"llm": str(lm), "rep_dim": 8, "head_hidden": 16, "history_items": 4}

    def fits(folder: str, llm_epochs: int, train_epochs: int = 2) -> dict:
        config = tiny_config(ratings, items, lm, methods=["backbone", {"llm-srec": llm_srec}])
        config["methods"][1]["llm-srec"]["epochs"] = llm_epochs
        config["train"] |= {"epochs": train_epochs, "patience": 100}
        outcome = run_pipeline(
            RunConfig.model_validate(config), tmp_path / folder, echo=lambda _: None
        )
        return {r.name: r.outputs for r in outcome.records if r.name.startswith("fit/")}

    sasrec, llm = "fit/sasrec/backbone/seed0", "fit/sasrec/llm-srec/seed0"
    fits("run", llm_epochs=1)
    longer = fits("run", llm_epochs=2)  # the same SASRec teacher: LLM-SRec goes on
    fresh = fits("fresh", llm_epochs=2)
    assert longer[llm]["warm_start"]["epochs"] == 1 and "warm_start" not in fresh[llm]
    assert longer[llm]["test"] == fresh[llm]["test"]
    assert len(list((tmp_path / "run" / "stages").glob("fit-sasrec-llm-srec-seed0-*"))) == 2
    # The run's epochs: SASRec goes on (and LLM-SRec, with another teacher, starts over).
    longer = fits("run", llm_epochs=2, train_epochs=3)
    fresh = fits("fresh", llm_epochs=2, train_epochs=3)
    assert longer[sasrec]["warm_start"]["epochs"] == 2 and "warm_start" not in longer[llm]
    assert longer[sasrec]["test"] == fresh[sasrec]["test"]


def test_two_processes_on_one_run_folder_compute_every_stage_once(setup):
    """`slimrec run` started twice on one config and folder (a user's way to use more
    cores): the fits are shared out, none is trained twice, both finish with the report.
    However the two interleave, each stage is computed by exactly one of them."""
    tmp_path, ratings, items, lm = setup
    llm_srec = {"llm": str(lm), "rep_dim": 8, "head_hidden": 16, "history_items": 4}
    config = tiny_config(ratings, items, lm, methods=["backbone", {"llm-srec": llm_srec}])
    config["seeds"] = [0, 1, 2]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config_file = run_dir / "config.yaml"  # the run's own, committed with its comments
    config_file.write_text("# three seeds\n" + yaml.safe_dump(config))
    command = [sys.executable, "-m", "slimrec.cli", "run", "--config", str(config_file)]
    workers = [
        subprocess.Popen(
            [*command, "--out", str(run_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=900)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs

    computed = [
        match.group(1)
        for output in outputs
        for match in re.finditer(r"\[([^\]]+)\] (?:running|resuming) in ", output)
    ]
    stages = json.loads((run_dir / "stages.json").read_text())["stages"]
    assert sorted(computed) == sorted(s["name"] for s in stages)  # each once, none left out
    assert len(stages) == 1 + 6 + 1  # prepare, 2 methods x 3 seeds, report
    for output in outputs:
        assert "report: " in output
    assert config_file.read_text().startswith("# three seeds\n")  # the same config: kept


def test_rationales_written_elsewhere_are_reused_for_the_users_they_answer(tiny_run, tmp_path):
    """`reason.rationales_file`: no teacher, distillation or reasoning stage; the users whose
    prompts the file answers get those rationales, the others none, and the report compares
    the methods among the users the text reaches."""
    import numpy as np
    import pandas as pd

    written = pd.read_parquet(RunArtifacts(tiny_run).rationales("student"))
    half = written[written["user"] % 2 == 0]
    file = tmp_path / "elsewhere.parquet"
    half.to_parquet(file)
    config = RunArtifacts(tiny_run).config.model_dump(mode="json")
    config["reason"]["rationales_file"] = str(file)
    config["methods"] = ["backbone+", "slim", "slim-shuffled-text"]
    run_dir = tmp_path / "run"

    first = run_pipeline(RunConfig.model_validate(config), run_dir, echo=lambda _: None)
    names = [r.name for r in first.records]
    assert not {"teach", "distill", "reason"} & set(names)
    assert names[:2] == ["prepare", "reuse/student"]
    reused = pd.read_parquet(RunArtifacts(run_dir).rationales("student"))
    assert set(half["user"]) <= set(reused["user"])  # the same data: the same users, or more
    for user, response in zip(half["user"], half["response"], strict=True):
        assert reused.loc[reused["user"] == user, "response"].iloc[0] == response
    table = np.load(RunArtifacts(run_dir).output("embed/student/response", "table"))
    reached = np.flatnonzero(np.abs(table).sum(axis=1) > 0)
    assert set(reached) == set(reused["user"]) and len(reached) < len(table)
    report = first.report.read_text()
    assert "## Users with and without a rationale" in report
    assert f"| with | {len(reached):,} |" in report
    assert "student (" in report  # its rationales' quality, as for rationales written here
    pairs = subprocess.run(
        [sys.executable, "bench/fit_pairs.py", str(run_dir), "--by-text", "--protocols", "full",
         "--pair", "sasrec/slim", "sasrec/backbone+"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout  # fmt: skip
    assert f"with a rationale, {len(reached):,} users: " in pairs
    assert f"without a rationale, {len(table) - len(reached):,} users: " in pairs

    again = run_pipeline(RunConfig.model_validate(config), run_dir, echo=lambda _: None)
    assert set(again.status().values()) == {"cached"}
    written[written["user"] % 2 == 1].to_parquet(file)  # other answers: other rationales
    changed = run_pipeline(RunConfig.model_validate(config), run_dir, echo=lambda _: None)
    assert changed.status()["reuse/student"] == "ran"
    assert changed.status()["fit/sasrec/slim/seed0"] == "ran"
    assert changed.status()["fit/sasrec/backbone+/seed0"] == "cached"


def test_rationales_that_answer_no_prompt_here_are_refused_in_one_line(tiny_run, tmp_path):
    import pandas as pd

    written = pd.read_parquet(RunArtifacts(tiny_run).rationales("student"))
    file = tmp_path / "elsewhere.parquet"
    written.assign(prompt=written["prompt"] + " ").to_parquet(file)
    config = RunArtifacts(tiny_run).config.model_dump(mode="json")
    config["reason"]["rationales_file"] = str(file)
    config["methods"] = ["slim"]
    with pytest.raises(ConfigError, match=r"none of its .* prompts is asked of a user here"):
        run_pipeline(RunConfig.model_validate(config), tmp_path / "run", echo=lambda _: None)
    config["reason"]["rationales_file"] = str(tmp_path / "absent.parquet")
    with pytest.raises(ValueError, match="rationales_file"):
        RunConfig.model_validate(config)


def test_a_fit_goes_on_only_from_finished_fits_of_its_own_name(tmp_path):
    from slimrec.pipeline.stages import earlier_fits

    stages = tmp_path / "stages"
    names = ["fit-sasrec-llm-srec-seed0-aa11", "fit-sasrec-llm-srec-seed0-bb22"]
    names += ["fit-sasrec-llm-srec-seed0-cc33", "fit-sasrec-llm-srec-nodistill-seed0-dd44"]
    for name in names:
        (stages / name).mkdir(parents=True)
    for name in (names[1], names[3]):
        (stages / name / "stage.json").write_text("{}")
    (stages / names[0] / "stage.json").write_text("{}")
    assert earlier_fits(stages / names[2]) == (stages / names[0], stages / names[1])
    (stages / names[1] / "stage.json").unlink()  # still training in another process
    assert earlier_fits(stages / names[2]) == (stages / names[0],)
