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


def test_written_folder_gets_the_umask_mode_not_mkdtemps_0700(tmp_path):
    from slimrec.io import atomic_dir

    with atomic_dir(tmp_path / "prepared") as tmp:
        (tmp / "a.txt").write_text("x")
    mode = stat.S_IMODE((tmp_path / "prepared").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask


def test_a_killed_writers_temporaries_are_swept_by_the_next_write(tmp_path):
    """SIGKILL leaves `.OUT.<pid>.*.tmp` behind; the next write of OUT removes it, but
    never the temporaries of a process that is still running."""
    import subprocess
    import sys

    from slimrec.io import atomic_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    orphan = tmp_path / f".out.{dead}.abc123.tmp"
    (orphan / "half").mkdir(parents=True)
    orphan_file = tmp_path / f".out.{dead}.def456.tmp.x"
    orphan_file.write_text("half")
    live = tmp_path / f".out.{os.getpid()}.zzz.tmp"
    live.mkdir()
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done").write_text("ok")
    assert not orphan.exists() and not orphan_file.exists()
    assert live.exists() and (tmp_path / "out" / "done").is_file()


def test_an_output_path_that_cannot_be_written_is_refused_up_front(tmp_path):
    import pytest

    from slimrec.errors import ConfigError
    from slimrec.io import check_writable

    a_file = tmp_path / "f"
    a_file.write_text("x")
    check_writable(tmp_path / "new" / "deeper")  # a folder still to be made is fine
    check_writable(tmp_path / "out.parquet", file=True)
    for path, file, message in [
        (a_file, False, "is a file; a folder goes there"),
        (tmp_path, True, "is a folder; a file goes there"),
        (a_file / "sub", False, "cannot be created"),
    ]:
        with pytest.raises(ConfigError, match=message):
            check_writable(path, file=file)
