"""Reading a rationales file (Parquet, one row per user: ``slimrec teach``'s and ``slimrec
reason``'s output, :data:`slimrec.methods.slim.teach.COLUMNS`), with one-line errors.

The student's training set and rationales reused from elsewhere are both read here, so a
missing file, a file that is not Parquet, or one without the needed columns is reported
the same way wherever it is passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from slimrec.errors import DataError

FIX = "pass a rationales.parquet written by `slimrec teach` or `slimrec reason`"


def read_rationale_file(path: str | Path, required: Sequence[str]) -> pd.DataFrame:
    """The file's rows, refused in one line unless it is Parquet with every ``required``
    column."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such rationales file", where=path, fix=FIX)
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for non-Parquet input
        raise DataError(f"cannot read as Parquet ({type(e).__name__})", where=path, fix=FIX) from e
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)} (columns: {', '.join(frame.columns)})",
            where=path,
            fix=FIX,
        )
    return frame
