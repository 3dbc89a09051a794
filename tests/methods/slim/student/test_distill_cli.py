"""`slimrec distill`: a run with its report, flags over YAML, and one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml
from tests.cli_helpers import run


def test_distill_with_report_and_yaml_config(tiny_lm, rationales, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SLIMREC_CACHE", str(tmp_path / "cache"))
    config = tmp_path / "student.yaml"
    config.write_text(yaml.safe_dump({"base_model": str(tiny_lm), "epochs": 5, "threads": 1}))
    out = tmp_path / "run"
    argv = ["distill", "--rationales", str(rationales), "--out", str(out)]
    argv += ["--config", str(config), "--epochs", "1", "--batch-size", "3", "--report"]
    code, stdout, _ = run([*argv, "--report-tokens", "8"], capsys)
    assert code == 0
    assert "best epoch 0" in stdout and "| parses into 3 steps |" in stdout
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["epochs"] == 1 and saved["batch_size"] == 3 and saved["threads"] == 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    quality = json.loads((out / "quality.json").read_text())
    assert quality["after"]["n"] == 1 and quality["sampling"]["max_new_tokens"] == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--rationales", "{tmp}/absent.parquet"], "absent.parquet: no such rationales file"),
        (["--epochs", "0"], "--epochs: invalid value for epochs"),
        (["--config", "{tmp}/absent.yaml"], "absent.yaml: no such config file"),
        (["--base-model", "{tmp}"], "cannot load a causal LM"),
    ],
)
def test_bad_input_is_one_line(rationales, tmp_path, capsys, argv, message):
    base = ["distill", "--rationales", str(rationales), "--out", str(tmp_path / "run")]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, error = run(base + argv, capsys)
    assert code == 2 and message.replace("{tmp}", str(tmp_path)) in error
