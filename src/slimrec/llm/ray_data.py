"""Chat requests answered across a Ray cluster with Ray Data, one shard per call.

Per-user stages outgrow one machine at the SLIM paper's scale (50,546 users: ~5M
generated tokens for the student alone). Ray Data (Moritz et al., "Ray", OSDI 2018; the
``ray.data`` streaming executor) maps the work over an actor pool: each actor builds one
model replica (``make_backend``, on the CPUs or GPUs it declares) and answers whole
shards, each with one ``backend.generate`` call, exactly as the single-process path
answers that shard. So greedy answers are the same either way, and the caller writes
each shard as it comes back, with the same files, resume and cache keys.

Requests and completions cross the cluster as JSON (plain Arrow strings, no pickled
objects); ``make_backend`` travels by cloudpickle, so what it closes over (settings, an
adapter's bytes) reaches every node without a shared file system. ``pip install
'slimrec[ray]'``; a cluster's workers need slimrec installed too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slimrec.errors import ConfigError
from slimrec.llm.backends.base import Backend, ChatRequest, Completion, SamplingConfig


class RayConfig(BaseModel):
    """Where and how wide the work runs on Ray."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        description="The Ray cluster to join ('auto', or ray://HOST:10001); none: start a "
        "local one on this machine for the run.",
    )
    replicas: int = Field(2, ge=1, description="Model replicas (Ray actors), one shard each.")
    cpus_per_replica: float = Field(1.0, gt=0, description="CPUs each replica reserves.")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs each replica reserves.")


def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as e:
        raise ConfigError(
            "Ray is not installed", where="ray", fix="pip install 'slimrec[ray]'"
        ) from e
    return ray


def generate_shards(
    shards: Mapping[int, Sequence[ChatRequest]],
    make_backend: Callable[[], Backend],
    sampling: SamplingConfig,
    config: RayConfig,
) -> Iterator[tuple[int, list[Completion]]]:
    """Yield ``(shard, its completions in request order)`` as each shard is answered."""
    if not shards:
        return
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        local = {}
        if config.address is None:  # room for every replica, even on a small machine
            need = int(config.replicas * config.cpus_per_replica + 0.999)
            local = {"num_cpus": max(os.cpu_count() or 1, need), "include_dashboard": False}
        ray.init(address=config.address, log_to_driver=False, **local)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        rows = [
            {"shard": int(s), "requests": json.dumps([asdict(r) for r in requests])}
            for s, requests in shards.items()
        ]
        answered = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Replica,
            fn_constructor_kwargs={"make_backend": make_backend, "sampling": sampling},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=config.replicas),
            num_cpus=config.cpus_per_replica,
            num_gpus=config.gpus_per_replica,
        )
        for row in answered.iter_rows():
            yield int(row["shard"]), [Completion(**c) for c in json.loads(row["completions"])]
    finally:
        if started_here:
            ray.shutdown()


class _Replica:
    """One model replica in a Ray actor: answers a shard per call."""

    def __init__(self, make_backend: Callable[[], Backend], sampling: SamplingConfig):
        self.backend = make_backend()
        self.backend.check()
        self.sampling = sampling

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        out = []
        for payload in batch["requests"]:
            requests = [ChatRequest(**r) for r in json.loads(payload)]
            answers = dict(self.backend.generate(requests, self.sampling))
            out.append(json.dumps([asdict(answers[i]) for i in range(len(requests))]))
        return {"shard": list(batch["shard"]), "completions": out}
