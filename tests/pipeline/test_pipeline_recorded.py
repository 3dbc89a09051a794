"""``slimrec report``: a run's report from every fit it has recorded, whichever run made it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.cli_helpers import run as run_cli


def fit_folder(run: Path, label: str) -> Path:
    return next((run / "stages").glob(f"fit-{label}-seed0-*"))


def copy_fit(run: Path, label: str, *, seed: int, key: str, as_label: str | None = None) -> Path:
    """The seed-0 fit of ``label`` again as ``seed`` (of ``as_label``) under ``key``, as
    another invocation of the run (another config) would have left it: in stages/, not in
    stages.json."""
    source = fit_folder(run, label)
    target = source.with_name(f"fit-{as_label or label}-seed{seed}-{key}")
    shutil.copytree(source, target)
    manifest = json.loads((target / "stage.json").read_text())
    name = (as_label or label).replace("-", "/", 1)
    manifest |= {"name": f"fit/{name}/seed{seed}", "key": key}
    (target / "stage.json").write_text(json.dumps(manifest))
    return target


def test_fits_from_another_invocation_are_reported_with_their_seeds(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    copy_fit(run, "sasrec-backbone", seed=1, key="0123456789abcdef")
    own_report = (run / "report.md").read_text()
    code, out, err = run_cli(["report", "--run", str(run), "--out", str(tmp_path / "r")], capsys)
    assert code == 0, err
    assert out.strip() == f"report: {tmp_path / 'r' / 'report.md'}"
    report = (tmp_path / "r" / "report.md").read_text()
    fits = report.split("## Fits behind these tables", 1)[1].split("\n## ", 1)[0]
    assert "| sasrec/backbone | 0, 1 |" in fits and "| sasrec/slim | 0 |" in fits
    assert "| text-matching | 0 |" in fits
    # seed 1 is a copy of seed 0: their mean is seed 0's value, with a spread of zero
    own = json.loads((fit_folder(run, "sasrec-backbone") / "stage.json").read_text())
    ndcg = own["outputs"]["test"]["full"]["ndcg@10"]
    row = next(line for line in report.splitlines() if line.startswith("| sasrec | ndcg@10 |"))
    assert row.split(" | ")[2].strip("*") == f"{ndcg:.4f} ± 0.0000"
    assert (tmp_path / "r" / "results.json").is_file()
    assert (run / "report.md").read_text() == own_report  # --out elsewhere leaves it alone


def test_two_finished_fits_of_one_name_are_refused_in_one_line(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    copy_fit(run, "sasrec-backbone", seed=0, key="fedcba9876543210")
    code, _, err = run_cli(["report", "--run", str(run)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "two finished fits of fit/sasrec/backbone/seed0" in err and "delete" in err


def test_a_run_without_a_finished_fit_or_no_run_at_all_is_one_line(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    for folder in (run / "stages").glob("fit-*"):
        shutil.rmtree(folder)
    code, _, err = run_cli(["report", "--run", str(run)], capsys)
    assert code == 2 and "no finished fit" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["report", "--run", str(tmp_path)], capsys)
    assert code == 2 and "not a slimrec run folder" in err and len(err.strip().splitlines()) == 1


def test_a_method_the_runs_config_lacks_joins_the_tables(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    copy_fit(run, "sasrec-backbone", seed=0, key="00112233445566aa", as_label="sasrec-backbone+")
    code, _, err = run_cli(["report", "--run", str(run)], capsys)  # into the run folder
    assert code == 0, err
    report = (run / "report.md").read_text()
    assert "| sasrec/backbone+ | 0 |" in report and "- **backbone+**: " in report
    # SLIM against the new Backbone+ within each history group, on the seed both have
    by_history = report.split("## By history length", 1)[1].split("\n## ", 1)[0]
    assert "| sasrec | SLIM vs Backbone+ | 0 | " in by_history


def test_a_fit_on_other_prepared_data_is_refused_in_one_line(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    other = copy_fit(run, "sasrec-backbone", seed=1, key="aabbccddeeff0011")
    manifest = json.loads((other / "stage.json").read_text())
    manifest["inputs"]["data"] = "0000000000000000"
    (other / "stage.json").write_text(json.dumps(manifest))
    code, _, err = run_cli(["report", "--run", str(run)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "fit/sasrec/backbone/seed1 was trained on other prepared data" in err
