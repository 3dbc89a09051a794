"""``slimrec reason`` across a real local Ray cluster (two student replicas): the same
rationales and shard files as the single-process path, and a resumed run answers only the
shards that are missing."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from tests.methods.slim.student.test_reason import cfg, data  # noqa: F401 (fixture)
from tests.tiny_lm import make_random_adapter

from slimrec.cluster import RayConfig
from slimrec.methods.slim.student.reason import reason, shard_dir

# Starts Ray or vLLM: scripts/test.sh runs these in a process of their own (-m engine).
pytestmark = pytest.mark.engine

pytest.importorskip("ray")  # the [ray] extra; CI installs it, so this never skips there


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_ray_replicas_write_the_same_rationales_and_resume(lively_lm, data, tmp_path):  # noqa: F811
    adapter = make_random_adapter(lively_lm, tmp_path / "adapter")
    settings = {"adapter": str(adapter), "users": list(range(10))}  # 3 shards of <= 4
    here = reason(data, tmp_path / "here.parquet", cfg(lively_lm, **settings), progress=False)
    assert here["shards"] == 3

    # A run killed after its first shard: the other two are answered on Ray.
    out = tmp_path / "ray.parquet"
    shard_dir(out).mkdir()
    for name in ("key.json", "shard-00000.parquet"):
        shutil.copy(shard_dir(tmp_path / "here.parquet") / name, shard_dir(out) / name)
    ray = RayConfig(replicas=2, cpus_per_replica=1)
    there = reason(data, out, cfg(lively_lm, **settings, ray=ray), progress=False)

    assert there["shards_generated"] == 2 and there["generated"] == 6
    assert there["model"] == here["model"] and "+lora@" in there["model"]
    a, b = pd.read_parquet(here["path"]), pd.read_parquet(there["path"])
    assert b["cached"].tolist() == [True] * 4 + [False] * 6
    columns = ["user", "prompt", "response", "parsed", "completion_tokens"]
    pd.testing.assert_frame_equal(a[columns], b[columns])
    assert there["completion_tokens"] == b["completion_tokens"][4:].sum() > 0
