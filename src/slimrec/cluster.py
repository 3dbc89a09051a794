"""Work cut into shards, mapped over a Ray cluster with Ray Data, one replica per actor.

Per-user stages outgrow one machine at the SLIM paper's scale (50,546 users: ~5M
generated tokens for the student alone, and every rationale to embed). Ray Data (Moritz et
al., "Ray", OSDI 2018; the ``ray.data`` streaming executor) maps the shards over an actor
pool: each actor builds one replica of what does the work (``make_worker``: a model, on
the CPUs or GPUs it declares) once, then turns one shard's payload into its result per
call. Results come back to the caller shard by shard as they finish, so the caller
writes them exactly where its one-process path would: same files, resume and cache keys.

Payloads and results cross the cluster as strings (plain Arrow columns, no pickled
objects); ``make_worker`` travels by cloudpickle, so what it closes over (settings, an
adapter's bytes) reaches every node without a shared file system. ``pip install
'slimrec[ray]'``; the workers of a cluster need slimrec installed too.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slimrec.errors import ConfigError, SlimrecError

Worker = Callable[[str], str]  # one shard's payload -> its result
FAILED = "\x00failed: "  # a result that carries a replica's error back as one line


# A local cluster waits up to 10 min (Ray: 60 s) for a worker process to start: on a
# loaded 2-core machine the engine tests' workers took longer and Ray gave up on them.
LOCAL_RAY_SYSTEM = {"worker_register_timeout_seconds": 600}


class ReplicaError(SlimrecError):
    """A replica could not be built or failed on a shard (the shards before it are kept)."""


class RayConfig(BaseModel):
    """Where and how wide the work runs on Ray."""

    model_config = ConfigDict(extra="forbid")

    address: str | None = Field(
        None,
        description="The Ray cluster to join ('auto', or ray://HOST:10001); none: start a "
        "local one on this machine for the run.",
    )
    replicas: int = Field(2, ge=1, description="Replicas (Ray actors), one shard at a time each.")
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


def map_shards(
    payloads: Mapping[int, str], make_worker: Callable[[], Worker], config: RayConfig
) -> Iterator[tuple[int, str]]:
    """Yield ``(shard, make_worker()(payload))`` for every shard, as each finishes.

    A cluster this call starts, it shuts down, and Ray's implicit ``ray.init`` (auto-
    connect) stays off in this process afterwards (:func:`_no_stray_cluster`): later Ray
    code here calls ``ray.init()`` itself, as ours does.
    """
    if not payloads:
        return
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        local = {}
        if config.address is None:  # room for every replica, even on a small machine
            need = int(config.replicas * config.cpus_per_replica + 0.999)
            local = {"num_cpus": max(os.cpu_count() or 1, need), "include_dashboard": False}
            local["_system_config"] = LOCAL_RAY_SYSTEM
        ray.init(address=config.address, log_to_driver=False, **local)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        rows = [{"shard": int(s), "payload": p} for s, p in payloads.items()]
        done = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _Replica,
            fn_constructor_kwargs={"make_worker": make_worker},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=config.replicas),
            num_cpus=config.cpus_per_replica,
            num_gpus=config.gpus_per_replica,
        )
        for row in done.iter_rows():
            result = str(row["result"])
            if result.startswith(FAILED):
                raise ReplicaError(
                    result.removeprefix(FAILED),
                    where=f"Ray replica, shard {row['shard']}",
                )
            yield int(row["shard"]), result
    finally:
        if started_here:
            try:
                _no_stray_cluster(ray)
            finally:  # an interrupt while joining still ends the cluster we started
                ray.shutdown()


def _no_stray_cluster(ray: Any) -> None:
    """Let no Ray Data thread start a second local cluster once ours is shut down.

    Ray Data's driver threads can outlive the iteration: the executor joins its
    scheduling loop for 2 s only, and the block prefetcher may be mid-fetch. On a loaded
    machine such a thread's next Ray call comes after ``ray.shutdown()``, and Ray's
    auto-init then starts a fresh local cluster inside this process, so the next
    ``ray.init`` here fails with "called ray.init twice" (seen: the engine tests beside
    two other test runs, 2026-12-06). With auto-connect off (``RAY_ENABLE_AUTO_CONNECT=0``
    read at import, so set here on the module) that late call fails in its own thread;
    our own ``ray.init`` is explicit and unaffected.
    """
    here = threading.current_thread()
    for thread in threading.enumerate():
        if thread.name.startswith("StreamingExecutor-") and thread is not here:
            thread.join(timeout=60)  # it ends once its executor is shut down
    hook = getattr(getattr(ray, "_private", None), "auto_init_hook", None)
    if hook is not None and hasattr(hook, "enable_auto_connect"):
        hook.enable_auto_connect = False


class _Replica:
    """One replica in a Ray actor: built once, then one shard per call. Its errors travel
    back as results, so the caller reports one line instead of Ray's actor traceback."""

    def __init__(self, make_worker: Callable[[], Worker]):
        self.work: Worker | None = None
        self.failed = ""
        try:
            self.work = make_worker()
        except Exception as e:
            self.failed = _one_line(e)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        return {
            "shard": list(batch["shard"]),
            "result": [self._do(str(p)) for p in batch["payload"]],
        }

    def _do(self, payload: str) -> str:
        if self.work is None:
            return FAILED + self.failed
        try:
            return self.work(payload)
        except Exception as e:
            return FAILED + _one_line(e)


def _one_line(error: Exception) -> str:
    if isinstance(error, SlimrecError):
        return error.one_line()
    return f"{type(error).__name__}: {error}".splitlines()[0]
