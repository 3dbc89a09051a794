"""Fixtures of the student tests: a rationales file and a memorised run."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.methods.slim.student.rationale_fixtures import (
    memorising,
    rationale_rows,
    write_rationales,
)


@pytest.fixture
def rationales(tmp_path) -> Path:
    return write_rationales(tmp_path / "rationales.parquet", rationale_rows())


@pytest.fixture(scope="session")
def memorised_run(lively_lm, tmp_path_factory) -> tuple[Path, Path, object]:
    """(rationales file, run folder, config) of a student that memorised its rationales."""
    from slimrec.methods.slim.student import distill

    root = tmp_path_factory.mktemp("memorised")
    rationales = write_rationales(root / "rationales.parquet", rationale_rows())
    cfg = memorising(lively_lm, max_length=512)
    distill(rationales, cfg, root / "run")
    return rationales, root / "run", cfg
