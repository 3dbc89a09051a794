"""Shards over a real local Ray cluster: results come back whole, and a replica's error
comes back as one line naming the shard, not as Ray's actor traceback."""

from __future__ import annotations

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
