"""Atomic writes: all or nothing, and the file mode a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from slimrec.io import atomic_path, write_text_atomic


def test_written_file_gets_the_umask_mode_not_mkstemps_0600(tmp_path):
    write_text_atomic(tmp_path / "report.md", "hello")
    mode = stat.S_IMODE((tmp_path / "report.md").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
