"""The command line: a happy path and every kind of bad input, each one line + exit 2."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from slimrec.cli import main
from tests.cli_helpers import run


def write_benchmark(
    folder: Path, *, items: str | None = None, header="user_id,item_id,position"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f"u{u},i{(u * 3 + t) % 12},{t}" for u in range(30) for t in range(8)]
    (folder / "interactions.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    if items is None:
        items = "".join(
            json.dumps({"item_id": f"i{i}", "title": f"<b>Item</b> {i}"}) + "\n" for i in range(12)
        )
    (folder / "items.jsonl").write_text(items)
    return folder


def test_prepare_and_stats(tmp_path, capsys):
    data = write_benchmark(tmp_path / "bench")
    out = tmp_path / "prepared"
    code, stdout, _ = run(
        ["data", "prepare", "--dataset", str(data), "--out", str(out), "--user-core", "3"], capsys
    )
    assert code == 0, stdout
    assert "interactions             240" in stdout
    code, stdout, _ = run(["data", "stats", str(out)], capsys)
    assert code == 0 and "users                    30" in stdout
    code, stdout, _ = run(["data", "stats", str(out), "--json"], capsys)
    assert json.loads(stdout)["options"]["user_core"] == 3


BAD = {
    "misnamed column": (dict(header="user,item_id,position"), "missing column(s) ['user_id']"),
    "not utf-8": (dict(items='{"item_id": "i1", "title": "caf\xe9"}\n'), "not valid UTF-8"),
    "duplicate item ids": (
        dict(items='{"item_id": "i1"}\n{"item_id": "i1"}\n'),
        "duplicate item id 'i1'",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_leaves_nothing(case, tmp_path, capsys):
    kwargs, message = BAD[case]
    data = tmp_path / "bench"
    write_benchmark(
        data, **{k: v for k, v in kwargs.items() if k != "items"}, items=kwargs.get("items")
    )
    if case == "not utf-8":
        (data / "items.jsonl").write_bytes(
            '{"item_id": "i1", "title": "caf\xe9"}\n'.encode("latin-1")
        )
    out = tmp_path / "out"
    code, _, err = run(["data", "prepare", "--dataset", str(data), "--out", str(out)], capsys)
    assert code == 2
    assert message in err
    assert "fix:" in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["bench"]


def test_missing_items_fail_and_empty_after_filtering(tmp_path, capsys):
    data = write_benchmark(tmp_path / "bench", items='{"item_id": "i1"}\n')
    out = tmp_path / "out"
    argv = ["data", "prepare", "--dataset", str(data), "--out", str(out), "--missing-items", "fail"]
    code, _, err = run(argv, capsys)
    assert code == 2 and "absent from the item catalog" in err and "interactions.csv" in err
    code, _, err = run(["data", "prepare", "--dataset", str(data), "--out", str(out)], capsys)
    assert code == 2 and "no interactions left after filtering" in err
    assert not out.exists()


def test_unknown_format_and_missing_path(tmp_path, capsys):
    odd = tmp_path / "data.xyz"
    odd.write_text("hello")
    code, _, err = run(
        ["data", "prepare", "--dataset", str(odd), "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "cannot tell the format" in err and "data.xyz" in err
    code, _, err = run(
        ["data", "prepare", "--dataset", str(odd), "--format", "xml", "--out", str(tmp_path / "o")],
        capsys,
    )
    assert code == 2 and "format" in err
    code, _, err = run(
        ["data", "prepare", "--dataset", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
        capsys,
    )
    assert code == 2 and "no such file or folder" in err


def test_console_script_exit_status(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "slimrec.cli", "data", "stats", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "not a prepared dataset" in proc.stderr


def test_train_from_the_command_line(tmp_path, capsys):
    data = write_benchmark(tmp_path / "bench")
    prepared = tmp_path / "prepared"
    assert (
        main(
            ["data", "prepare", "--dataset", str(data), "--out", str(prepared), "--user-core", "3"]
        )
        == 0
    )
    config = tmp_path / "train.yaml"
    config.write_text(
        "backbone: gru4rec\nmodel: {dim: 16}\nbatch_size: 32\ntest_protocols: [full]\n"
    )
    argv = [
        "train",
        "--data",
        str(prepared),
        "--out",
        str(tmp_path / "run"),
        "--config",
        str(config),
    ]
    code, out, _ = run([*argv, "--epochs", "2", "--threads", "1"], capsys)
    assert code == 0 and "test (full): ndcg@10" in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["backbone"] == "gru4rec" and results["epochs_run"] == 2
    config.write_text("backbone: gru4rec\nepochz: 3\n")
    code, _, err = run(argv, capsys)
    assert code == 2 and "train.yaml" in err and "epochz" in err
    # A bad flag is blamed on the flag, not on the file it overrides.
    config.write_text("backbone: gru4rec\nepochs: 3\n")
    code, _, err = run([*argv, "--epochs", "0"], capsys)
    assert code == 2 and err.startswith("error: --epochs:") and "train.yaml" not in err
    # A backbone refused leaves no run folder behind.
    fresh = [*argv[:4], str(tmp_path / "run2"), *argv[5:], "--backbone", "bert4rec"]
    code, _, err = run(fresh, capsys)
    assert code == 2 and "bert4rec" in err and not (tmp_path / "run2").exists()


def test_an_out_that_cannot_be_written_is_one_line_before_any_work(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("name: x\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    code, _, err = run(["run", "--config", str(config), "--out", str(blocker)], capsys)
    assert code == 2 and "--out is a file" in err
    code, _, err = run(["run", "--config", str(config), "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "is a file" in err
    code, _, err = run(
        ["teach", "--data", str(tmp_path), "--out", str(tmp_path), "--model", "m"], capsys
    )
    assert code == 2 and "--out is a folder" in err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_os_error_on_a_path_is_one_line_exit_2(tmp_path, capsys):
    # /proc refuses new folders even to root, whom permission checks let through.
    config = tmp_path / "run.yaml"
    config.write_text("name: x\n")
    code, _, err = run(["run", "--config", str(config), "--out", "/proc/slimrec-x"], capsys)
    assert code == 2 and "/proc/slimrec-x" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "the config file is empty"),
        ("train:\n  epochs: 3\ntrain:\n  epochs: 4\n", "appears twice"),
    ],
)
def test_an_empty_config_or_a_key_given_twice_is_refused(tmp_path, capsys, text, needle):
    config = tmp_path / "run.yaml"
    config.write_text(text)
    code, _, err = run(["run", "--config", str(config), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and needle in err and "run.yaml" in err
    assert not (tmp_path / "o").exists()


def test_a_run_setting_given_on_the_command_line_is_checked_before_any_work(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("name: x\nseeds: [0, 1]\n")
    out = tmp_path / "o"
    code, _, err = run(
        ["run", "--config", str(config), "--out", str(out), "--set", "seeds=[0, 0]"], capsys
    )
    assert code == 2 and err.startswith("error: --set seeds: ") and "listed twice" in err
    code, _, err = run(
        ["run", "--config", str(config), "--out", str(out), "--set", "seeds"], capsys
    )
    assert code == 2 and "is not KEY=VALUE" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train"], "slimrec train: Missing option '--data'"),
        (["serve", "--port", "abc"], "slimrec serve: Invalid value for '--port'"),
        (["serve-llm", "--model", "m", "--port", "70000"], "Invalid value for '--port'"),
        (["serve-llm", "--model", "m", "--threads", "0"], "Invalid value for '--threads'"),
        (["serve-llm", "--model", "m", "--adapter", "/no/such"], "Invalid value for '--adapter'"),
        (["frobnicate"], "No such command 'frobnicate'"),
        (["serve-llm"], "slimrec serve-llm: Missing option '--model'"),
        (["--frobnicate"], "No such option: --frobnicate"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, needle):
    """A missing option, a bad value, an unknown command: one line on stderr, status 2."""
    proc = subprocess.run(
        [sys.executable, "-m", "slimrec.cli", *args], capture_output=True, text=True
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert needle in proc.stderr and "--help" in proc.stderr


def test_version():
    proc = subprocess.run(
        [sys.executable, "-m", "slimrec.cli", "--version"], capture_output=True, text=True
    )
    from slimrec import __version__

    assert proc.returncode == 0 and proc.stdout == f"slimrec {__version__}\n"


def test_methods_lists_every_registered_method_with_its_settings(capsys):
    from slimrec.methods import METHODS

    code, out, _ = run(["methods"], capsys)
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line and not line[0].isspace()]
    assert names[: len(METHODS)] == list(METHODS)
    assert re.search(r"^slim-gate +Slim\(fusion=gate\): ", out, re.M)  # names in a column
    assert "fusion: Literal['concat', 'residual', 'gate', 'fast-gate'] = 'fast-gate'" in out
    assert "stage1.tasks: tuple[Literal['ta', 'rps'], ...] = ('ta', 'rps')" in out
    assert "Undefined" not in out  # nested sections list their own fields


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


OK_CSV = "user_id,item_id,timestamp\nu1,i1,1\nu1,i2,2\nu1,i3,3\n"
BAD_FILES = {
    "unknown encoding": ("ok.csv", OK_CSV, ["--encoding", "klingon"], "unknown text encoding"),
    "truncated gzip": (
        "trunc.json.gz",
        gzip.compress(b'{"reviewerID": "a", "asin": "b", "x": "')[:-6],
        [],
        "cannot parse",
    ),
    "nested json": (
        "nested.jsonl",
        '{"user_id": "u", "item_id": "i", "order": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}\n",
        [],
        "cannot parse as jsonl",
    ),
    "extra field": ("extra.csv", OK_CSV + "u1,i4,4,EXTRA\n", [], "Expected 3 columns, got 4"),
    "unclosed quote": (
        "bench/interactions.csv",
        'user_id,item_id,position\nu1,"i1,0\nu1,i2,1\n',
        [],
        "cannot parse as CSV",
    ),
    "empty benchmark": (
        "bench/interactions.csv",
        "user_id,item_id,position\n",
        [],
        "no interactions",
    ),
}


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--min-seq-len", "1"], "--min-seq-len"),
        (["--format", "xml"], "--format"),
        (["--missing-items", "maybe"], "--missing-items"),
        (["--max-users", "0"], "--max-users"),
    ],
)
def test_data_prepare_blames_the_flag_not_the_field(flags, named, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(["data", "prepare", "--out", str(out), *flags], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {named}:") and f"see {named} in --help" in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_are_one_line_exit_2_and_leave_nothing(case, tmp_path, capsys):
    name, content, flags, message = BAD_FILES[case]
    path = _write(tmp_path / "in" / name, content)
    dataset = path.parent if name.startswith("bench/") else path
    out = tmp_path / "out"
    code, _, err = run(
        ["data", "prepare", "--dataset", str(dataset), "--out", str(out), *flags], capsys
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_out_under_a_file_fails_before_loading(tmp_path, capsys):
    blocker = _write(tmp_path / "file", "x")
    missing = tmp_path / "no-such-data.csv"  # never read: the --out check comes first
    code, _, err = run(
        ["data", "prepare", "--dataset", str(missing), "--out", str(blocker / "sub")], capsys
    )
    assert code == 2 and "is a file" in err


def test_stats_of_an_incomplete_prepared_folder_is_one_line(tmp_path, capsys):
    data = write_benchmark(tmp_path / "bench")
    out = tmp_path / "out"
    assert (
        run(
            ["data", "prepare", "--dataset", str(data), "--out", str(out), "--user-core", "3"],
            capsys,
        )[0]
        == 0
    )
    (out / "interactions.parquet").unlink()
    code, _, err = run(["data", "stats", str(out)], capsys)
    assert code == 2 and "incomplete prepared dataset" in err


def test_escaped_markup_is_stripped_not_unescaped_into_live_tags():
    from slimrec.data.textclean import clean_text

    assert clean_text("<p>&lt;script&gt;alert(1)&lt;/script&gt; Pen &amp; ink</p>") == "Pen & ink"
