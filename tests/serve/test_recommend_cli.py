"""``slimrec recommend`` in the terminal: the API's answer as a table, and one-line errors."""

from __future__ import annotations

import json

import pytest
from tests.cli_helpers import run as run_cli
from tests.run_fixtures import HOSTILE


def test_known_user_as_plain_table_and_json(tiny_run, service, capsys):
    user = service.catalog.user_raw[2]
    code, out, err = run_cli(
        ["recommend", "--run", str(tiny_run), "--user", user, "--k", "4", "--plain"], capsys
    )
    assert code == 0, err
    assert out.startswith(f"top 4 for user {user} (slim, sasrec)")
    assert "rationale (run:student):" in out and "Preferences:" in out
    expected = service.for_user(2, 4)
    for rank, s in enumerate(expected.items, start=1):
        assert f"{rank:>3}  {s.item.title[:20]}" in out

    code, out, _ = run_cli(
        ["recommend", "--run", str(tiny_run), "--user", user, "--k", "4", "--json"], capsys
    )
    body = json.loads(out)
    assert [it["id"] for it in body["items"]] == [s.item.id for s in expected.items]


def test_history_by_titles_with_rich(tiny_run, service, capsys):
    hostile = next(it for it in service.catalog.items.values() if HOSTILE in it.title)
    history = f"{hostile.raw_id},{service.catalog.title(5)}"
    code, out, err = run_cli(
        ["recommend", "--run", str(tiny_run), "--history", history, "--k", "3"], capsys
    )
    assert code == 0, err
    assert "top 3 for the given history" in out and "rationale (student)" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --user or --history"),
        (["--user", "user1", "--history", "1"], "give exactly one of"),
        (["--user", "nobody"], "no user with id 'nobody'"),
        (["--user", "user1", "--k", "0"], "--k must lie in 1..100"),
        (["--history", "1,no such item"], "--history: no item with id or title 'no such item'"),
        (["--user", "user1", "--method", "slim-"], "the run has no model slim-/seed0"),
    ],
)
def test_bad_input_is_one_line(tiny_run, capsys, args, message):
    code, _, err = run_cli(["recommend", "--run", str(tiny_run), *args], capsys)
    assert code == 2 and message in err, err


def test_not_a_run_folder(tmp_path, capsys):
    code, _, err = run_cli(["recommend", "--run", str(tmp_path), "--user", "1"], capsys)
    assert code == 2 and "not a slimrec run folder" in err
