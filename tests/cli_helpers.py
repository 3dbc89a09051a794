"""Run the ``slimrec`` CLI in-process in tests."""

from __future__ import annotations

from slimrec.cli import main


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit status, stdout, and the error line (the one stderr line starting with 'error:')."""
    code = main(argv)
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == (code == 2), err
    return code, out, errors[0] if errors else ""
