"""The prepared dataset: dense ids, one ordered sequence per user, leave-one-out splits.

Leave-one-out as in SASRec and the SLIM paper: for a sequence ``s`` of length ``n >= 3``,
training uses ``s[:-2]``, validation predicts ``s[-2]`` from ``s[:-2]`` and test predicts
``s[-1]`` from ``s[:-1]``. On disk it is a folder of Parquet files plus ``manifest.json``
holding the statistics and the exact options used, written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from slimrec import __version__
from slimrec.errors import DataError
from slimrec.io import atomic_dir

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = {"interactions": "interactions.parquet", "items": "items.parquet", "users": "users.parquet"}

Split = Literal["train", "valid", "test"]


def rationale_cutoff(n_train: int, hold_out: int) -> int:
    """How many of a user's ``n_train`` training items (oldest first) a rationale reads.

    With ``hold_out = k > 0`` a rationale is written from the training part less its
    ``k`` most recent items (never fewer than one item), so a recommender can learn from
    the targets at positions ``>= cutoff``, which the rationale has not seen -- the
    situation of every validation and test target. ``0``: the whole training part.
    One function for the prompts and the trainer, so the two cannot disagree.
    """
    if hold_out < 0:
        raise ValueError(f"hold_out must be >= 0, got {hold_out}")
    return n_train if hold_out == 0 else min(n_train, max(1, n_train - hold_out))


def items_read(before_cut: Sequence[int], shown: int) -> Sequence[int]:
    """The items a rationale's prompt showed of those ``before_cut`` (oldest first): the
    ``shown`` most recent (the prompt's ``max_items``; 0: all). Its character budget may
    drop a few more where long titles exceed it (``max_items * max_title_chars >
    max_history_chars``); the prompts of the shipped configs never reach it."""
    if shown < 0:
        raise ValueError(f"shown must be >= 0, got {shown}")
    return before_cut[-shown:] if shown else before_cut


@dataclass
class PreparedDataset:
    """Sequences of dense item ids (``1..n_items``; ``0`` is padding) per dense user id.

    ``items`` has one row per item id ``1..n_items`` (``item``, ``raw_id`` and the text
    fields); ``users`` maps ``user`` to the original ``raw_id``.
    """

    sequences: list[np.ndarray]
    items: pd.DataFrame
    users: pd.DataFrame
    name: str
    raw_stats: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    log: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.sequences)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def split(self, split: Split) -> tuple[list[np.ndarray], np.ndarray]:
        """``(histories, targets)`` of a split; for ``train`` the targets are empty.

        The training part of every sequence is ``s[:-2]``: nothing from validation or
        test, so any text written from it (rationales) cannot leak a held-out target.
        """
        if split == "train":
            return [s[:-2] for s in self.sequences], np.empty(0, dtype=np.int64)
        cut = {"valid": 2, "test": 1}[split]
        histories = [s[:-cut] for s in self.sequences]
        targets = np.array([s[-cut] for s in self.sequences], dtype=np.int64)
        return histories, targets

    def titles(self) -> list[str]:
        """``titles[i]``: item ``i``'s title (``item <raw id>`` if none); ``titles[0] = ""``."""
        titles = [""] * (self.n_items + 1)
        has_title = "title" in self.items.columns
        for item, raw, title in zip(
            self.items["item"],
            self.items["raw_id"],
            self.items["title"] if has_title else [None] * self.n_items,
            strict=True,
        ):
            text = title.strip() if isinstance(title, str) else ""
            titles[int(item)] = text or f"item {raw}"
        return titles

    def item_popularity(self, split: Split = "train") -> np.ndarray:
        """Interaction counts per item id (index 0 is padding, count 0) in what ``split`` sees."""
        histories, _ = self.split(split)
        return np.bincount(np.concatenate(histories), minlength=self.n_items + 1)

    def stats(self) -> dict[str, Any]:
        lengths = np.array([len(s) for s in self.sequences])
        n = int(lengths.sum())
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "mean_sequence_length": round(float(lengths.mean()), 3),
            "median_sequence_length": float(np.median(lengths)),
            "max_sequence_length": int(lengths.max()),
            "density": round(n / (self.n_users * self.n_items), 6),
        }

    def manifest(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "slimrec_version": __version__,
            "name": self.name,
            "split": "leave-one-out: train s[:-2], valid s[-2], test s[-1]",
            "raw_stats": self.raw_stats,
            "stats": self.stats(),
            "options": self.options,
            "log": self.log,
            "files": FILES,
        }

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the folder atomically: a crash leaves the old folder or none, never half."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise DataError(
                "output folder already exists", where=path, fix="pass --force or another --out"
            )
        lengths = np.array([len(s) for s in self.sequences])
        inter = pd.DataFrame(
            {
                "user": np.repeat(np.arange(self.n_users), lengths),
                "item": np.concatenate(self.sequences),
                "position": np.concatenate([np.arange(n) for n in lengths]),
            }
        )
        with atomic_dir(path, overwrite=overwrite) as tmp:
            inter.to_parquet(tmp / FILES["interactions"], index=False)
            self.items.to_parquet(tmp / FILES["items"], index=False)
            self.users.to_parquet(tmp / FILES["users"], index=False)
            (tmp / MANIFEST).write_text(
                json.dumps(self.manifest(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
            )
        return path

    @classmethod
    def load(cls, path: str | Path) -> PreparedDataset:
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise DataError(
                f"not a prepared dataset (no {MANIFEST})",
                where=path,
                fix="create it with `slimrec data prepare --out DIR`",
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise DataError(f"unreadable manifest ({e})", where=manifest_path) from e
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"format version {manifest.get('format_version')!r}, expected {FORMAT_VERSION}",
                where=manifest_path,
                fix="prepare the dataset again with this slimrec version",
            )
        missing = [f for f in FILES.values() if not (path / f).is_file()]
        if missing:
            raise DataError(
                f"incomplete prepared dataset: {', '.join(missing)} missing",
                where=path,
                fix="prepare it again with `slimrec data prepare --force`",
            )
        inter = pd.read_parquet(path / FILES["interactions"])
        inter = inter.sort_values(["user", "position"], kind="mergesort")
        users = pd.read_parquet(path / FILES["users"])
        counts = np.bincount(inter["user"].to_numpy(), minlength=len(users))
        sequences = np.split(inter["item"].to_numpy().astype(np.int64), np.cumsum(counts)[:-1])
        return cls(
            sequences=sequences,
            items=pd.read_parquet(path / FILES["items"]),
            users=users,
            name=manifest["name"],
            raw_stats=manifest["raw_stats"],
            options=manifest["options"],
            log=manifest["log"],
        )


def is_prepared(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()
