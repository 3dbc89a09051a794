"""`slimrec diagnose order` on a finished run: every fit, the anchors, files written."""

from __future__ import annotations

import json
import shutil

from tests.cli_helpers import run


def test_order_diagnostic_covers_every_fit_and_text_matching_never_moves(tiny_run, capsys):
    code, out, _ = run(["diagnose", "order", "--run", str(tiny_run), "--repeats", "2"], capsys)
    assert code == 0 and "### full" in out and "### sampled" in out
    saved = json.loads((tiny_run / "diagnose" / "order-shuffle.json").read_text())
    fits = {(f["method"], f["protocol"]): f for f in saved["fits"]}
    assert {m for m, _ in fits} == {"backbone", "slim", "text-matching"}
    matching = fits[("text-matching", "full")]
    assert all(v == 0.0 for v in matching["change_pct"].values())
    assert abs(matching["cosine"] - 1.0) < 1e-6
    assert fits[("backbone", "full")]["cosine"] < 1.0  # SASRec reads the order
    assert (tiny_run / "diagnose" / "order-shuffle.md").read_text().startswith("## Order")


def test_a_matched_window_shuffles_the_same_last_items_for_the_chosen_methods(tiny_run, capsys):
    args = ["diagnose", "order", "--run", str(tiny_run), "--repeats", "1", "--window", "3"]
    code, out, _ = run([*args, "--method", "backbone"], capsys)
    assert code == 0 and "The last 3 items of each model's window" in out
    saved = json.loads((tiny_run / "diagnose" / "order-shuffle-window3.json").read_text())
    assert {(f["method"], f["window"]) for f in saved["fits"]} == {("backbone", 3)}
    assert "| sasrec/backbone | 1 | 3 |" in out
    elsewhere = tiny_run.parent / "tables"
    code, _, _ = run([*args, "--method", "slim", "--out", str(elsewhere)], capsys)
    assert code == 0 and (elsewhere / "order-shuffle-window3.md").is_file()
    kept = json.loads((tiny_run / "diagnose" / "order-shuffle-window3.json").read_text())
    assert kept == saved  # the run's own table is left as it was
    code, _, err = run([*args, "--method", "slim-typo"], capsys)
    assert code == 2 and "slim-typo" in err and len(err.strip().splitlines()) == 1


def test_a_bad_perturbation_is_one_line_and_exit_2(tiny_run, capsys):
    code, _, err = run(
        ["diagnose", "order", "--run", str(tiny_run), "--perturbation", "sort"], capsys
    )
    assert code == 2 and "perturbation" in err and len(err.strip().splitlines()) == 1


def test_the_pipeline_runs_the_diagnostic_as_a_cached_stage_and_reports_it(tiny_run, tmp_path):
    from slimrec.pipeline import run_pipeline
    from slimrec.pipeline.artifacts import RunArtifacts

    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    saved = RunArtifacts(folder).config
    config = saved.model_dump() | {"diagnose": {"order": ["reverse"], "repeats": 1}}
    config = type(saved).model_validate(config)
    outcome = run_pipeline(config, folder, echo=lambda _: None)
    status = outcome.status()
    assert status["diagnose/order-reverse"] == "ran"
    assert {s for name, s in status.items() if name.startswith("fit/")} == {"cached"}
    report = outcome.report.read_text()
    assert "## Order sensitivity: reverse of the test histories" in report
    again = run_pipeline(config, folder, echo=lambda _: None)
    assert again.status()["diagnose/order-reverse"] == "cached"


def test_llm_srec_in_a_run_trains_its_teacher_first_and_is_diagnosed(tiny_run, lively_lm, tmp_path):
    from slimrec.pipeline import run_pipeline
    from slimrec.pipeline.artifacts import RunArtifacts

    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    small = {"llm": str(lively_lm), "rep_dim": 8, "head_hidden": 16, "epochs": 1}
    small |= {"history_items": 3}
    config = RunArtifacts(folder).config.model_dump()
    config |= {"methods": [{"llm-srec": small}], "diagnose": {"order": ["shuffle"], "repeats": 1}}
    config = type(RunArtifacts(folder).config).model_validate(config)
    outcome = run_pipeline(config, folder, echo=lambda _: None)
    status = outcome.status()
    # The teacher is the run's own SASRec fit: the tiny run trained it, so it is reused.
    assert status["fit/sasrec/backbone/seed0"] == "cached"
    assert status["fit/sasrec/llm-srec/seed0"] == "ran"
    assert "llm-srec" in outcome.report.read_text()
    order = json.loads(
        next((folder / "stages").glob("diagnose-order-shuffle-*/order-shuffle.json")).read_text()
    )
    assert {f["method"] for f in order["fits"]} == {"llm-srec"}
    # Only the 3 items its prompt holds are shuffled: the same items, another order.
    assert {f["window"] for f in order["fits"]} == {3}


def test_delrec_in_a_run_is_tested_on_the_sampled_lists_and_diagnosed(
    tiny_run, lively_lm, tmp_path
):
    from slimrec.pipeline import run_pipeline
    from slimrec.pipeline.artifacts import RunArtifacts

    folder = tmp_path / "run"
    shutil.copytree(tiny_run, folder)
    small = {
        "llm": str(lively_lm),
        "prompt": {"history_items": 4},
        "soft_prompt": {"n_tokens": 2},
        "stage1": {"users": 4, "valid_users": 2, "sr_top_h": 4, "icl_length": 3, "icl_back": 1},
        "stage2": {"users": 4, "valid_users": 4},
    }
    config = RunArtifacts(folder).config.model_dump()
    config |= {"methods": [{"delrec": small}], "diagnose": {"order": ["shuffle"], "repeats": 1}}
    config = type(RunArtifacts(folder).config).model_validate(config)
    outcome = run_pipeline(config, folder, echo=lambda _: None)
    status = outcome.status()
    assert status["fit/sasrec/backbone/seed0"] == "cached"  # the SR teacher, reused
    assert status["fit/sasrec/delrec/seed0"] == "ran"
    report = outcome.report.read_text()
    assert "| model | metric | delrec |" in report  # its SR teacher is not a listed method
    assert "A random ranking of the sampled lists (1 + 100 candidates)" in report
    order = json.loads(
        next((folder / "stages").glob("diagnose-order-shuffle-*/order-shuffle.json")).read_text()
    )
    assert [(f["method"], f["protocol"], f["cosine"], f["window"]) for f in order["fits"]] == [
        ("delrec", "sampled", None, 4)  # the 4 titles of its prompt
    ]
