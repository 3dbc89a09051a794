"""Atomic artifact writing: a reader sees the old artifact or the new one, never half.

Files are written to a temporary sibling and renamed into place (``os.replace`` is
atomic on POSIX within one filesystem). Folders are built in a temporary sibling and
swapped in; on any exception the temporary is removed, so a failed run leaves nothing,
and the temporaries of a killed process (named with its pid) are removed by the next
write of the same artifact.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slimrec.errors import ConfigError


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# mkstemp creates 0600 files and mkdtemp 0700 folders; artifacts get the modes a plain
# open() / mkdir() would give them.
FILE_MODE = _default_file_mode()
DIR_MODE = FILE_MODE | ((FILE_MODE & 0o444) >> 2)  # x wherever r: 0644 -> 0755


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # somebody else's process: alive
        return True
    return True


def _sweep_orphans(path: Path) -> None:
    """Remove temporaries of ``path`` left by killed processes (their pid is in the name).

    Temporaries of a process that is still running are left alone, so two writers never
    delete each other's work.
    """
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.*.*"):
        pid = sibling.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            if sibling.is_dir():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_orphans(path)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.is_file():
            os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, ensure_ascii=False) + "\n")


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``path``.

    An existing ``path`` is only replaced when ``overwrite`` is true, and then only after
    the new folder is complete.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_orphans(path)
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, DIR_MODE)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def check_writable(path: str | Path, *, file: bool = False, name: str = "--out") -> None:
    """Refuse, before any work, an output ``path`` that could not be written: under a
    file, a folder where a file goes or the reverse, or inside a folder this user may not
    write. ``name`` says which option gave it."""
    path = Path(path)
    if file and path.is_dir():
        raise ConfigError(f"{name} is a folder; a file goes there", where=path,
                          fix=f"give {name} a file name")  # fmt: skip
    if not file and path.exists() and not path.is_dir():
        raise ConfigError(f"{name} is a file; a folder goes there", where=path,
                          fix=f"choose another {name}")  # fmt: skip
    blocking = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"{name} cannot be created: {blocking} is a file", where=path,
                          fix=f"choose another {name}")  # fmt: skip
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise ConfigError(f"{name} cannot be written: {existing} is not writable", where=path,
                          fix=f"choose a writable {name}")  # fmt: skip


def cache_dir() -> Path:
    """The cache of fetched wheels and embeddings: ``$SLIMREC_CACHE`` or ``~/.cache/slimrec``."""
    root = os.environ.get("SLIMREC_CACHE") or Path.home() / ".cache" / "slimrec"
    return Path(root)


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
