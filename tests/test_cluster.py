"""Shards over a real local Ray cluster: results come back whole, and a replica's error
comes back as one line naming the shard, not as Ray's actor traceback."""

from __future__ import annotations

import threading

import pytest

from slimrec.cluster import RayConfig, ReplicaError, map_shards
from slimrec.errors import ConfigError

# Starts Ray or vLLM: scripts/test.sh runs these in a process of their own (-m engine).
pytestmark = pytest.mark.engine

pytest.importorskip("ray")  # the [ray] extra; CI installs it, so this never skips there


def shouting():
    return str.upper


def broken_model():
    raise ConfigError("no such model", where="base_model", fix="give a model folder")


def test_every_shard_comes_back_and_errors_are_one_line():
    config = RayConfig(replicas=2)
    payloads = {s: f"shard {s}" for s in range(5)}
    assert dict(map_shards(payloads, shouting, config)) == {s: f"SHARD {s}" for s in range(5)}
    with pytest.raises(ReplicaError) as failed:
        list(map_shards(payloads, broken_model, RayConfig(replicas=1)))
    line = failed.value.one_line()
    assert line.startswith("Ray replica, shard ") and "base_model: no such model" in line
    assert "fix: give a model folder" in line and "\n" not in line


def test_a_late_ray_call_after_the_run_starts_no_second_cluster():
    # Ray Data's threads can call Ray after map_shards shut its cluster down (a loaded
    # machine); Ray's auto-init would start a stray cluster and break the next ray.init.
    import ray

    assert dict(map_shards({0: "a"}, shouting, RayConfig(replicas=1))) == {0: "A"}
    assert not ray.is_initialized()
    late: list[BaseException] = []

    def late_call():
        try:
            ray.put(1)
        except BaseException as e:  # whatever the thread met, it must not be a cluster
            late.append(e)

    thread = threading.Thread(target=late_call)
    thread.start()
    thread.join()
    assert late and not ray.is_initialized()
    assert dict(map_shards({0: "b"}, shouting, RayConfig(replicas=1))) == {0: "B"}
