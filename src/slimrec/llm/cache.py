"""A durable cache of LLM answers: one SQLite row per answer, written the moment it arrives.

Teacher answers are slow and may cost money, so none is ever asked for twice. A row is
keyed by the sha256 of everything that determines the answer -- model id, prompt
template version, the exact messages and the sampling settings -- and holds the text,
token counts, the model that answered and when. Each answer is stored in its own short
transaction, so a run killed half-way keeps all it received and a re-run asks only for
the rest. WAL mode and a generous ``busy_timeout`` let several processes write to one
file at once without losing a row.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from slimrec.errors import SlimrecError
from slimrec.io import cache_dir
from slimrec.llm.backends.base import Completion, Message, SamplingConfig

BUSY_TIMEOUT_MS = 60_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    template_version TEXT NOT NULL,
    request TEXT NOT NULL,
    response TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    created_at REAL NOT NULL
)
"""
_LOOKUP_CHUNK = 500  # stays under SQLite's limit on bound parameters


def default_cache_path() -> Path:
    return cache_dir() / "llm-answers.sqlite"


def cache_key(
    model_id: str, template_version: str, messages: Sequence[Message], sampling: SamplingConfig
) -> str:
    """sha256 over everything that determines an answer (canonical JSON)."""
    blob = json.dumps(
        {
            "model_id": model_id,
            "template_version": template_version,
            "messages": list(messages),
            "sampling": sampling.model_dump(mode="json"),
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedAnswer:
    key: str
    response: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    created_at: float


class AnswerCache:
    """``get_many`` what is known, ``put`` each new answer at once (see module docstring)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode: every statement below is its own short transaction.
            self._db = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            self._db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: survives a killed process
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise SlimrecError(
                f"cannot open the answer cache ({e})",
                where=self.path,
                fix="point --cache at another file, or delete this one if it is corrupt",
            ) from e

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AnswerCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def get_many(self, keys: Iterable[str]) -> dict[str, CachedAnswer]:
        """The cached answers among ``keys``."""
        keys = list(dict.fromkeys(keys))
        found: dict[str, CachedAnswer] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            chunk = keys[start : start + _LOOKUP_CHUNK]
            rows = self._db.execute(
                "SELECT key, response, model, prompt_tokens, completion_tokens, finish_reason,"
                f" created_at FROM answers WHERE key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for row in rows:
                found[row[0]] = CachedAnswer(*row)
        return found

    def get(self, key: str) -> CachedAnswer | None:
        return self.get_many([key]).get(key)

    def put(
        self,
        key: str,
        completion: Completion,
        *,
        model_id: str,
        template_version: str,
        request: object = None,
    ) -> None:
        """Store one answer now; a key already present keeps its first answer."""
        self._db.execute(
            "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO NOTHING",
            (
                key,
                model_id,
                template_version,
                json.dumps(request, ensure_ascii=False),
                completion.text,
                completion.model,
                int(completion.prompt_tokens),
                int(completion.completion_tokens),
                completion.finish_reason,
                time.time(),
            ),
        )
