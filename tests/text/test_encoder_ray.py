"""The sentence encoder across a real local Ray cluster (two replicas): the vectors the
one-process encoder gives, each shard cached as it returns."""

from __future__ import annotations

import numpy as np
import pytest

from slimrec.cluster import RayConfig
from slimrec.text import TextEncoder
from slimrec.text import encoder as encoder_module

# Starts Ray or vLLM: scripts/test.sh runs these in a process of their own (-m engine).
pytestmark = pytest.mark.engine

pytest.importorskip("ray")  # the [ray] extra; CI installs it, so this never skips there


def test_replicas_embed_as_one_process_and_fill_the_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(encoder_module, "RAY_SHARD", 7)  # 30 texts: 5 shards over 2 replicas
    texts = [
        f"rationale {i}: the user likes {'puzzle' if i % 2 else 'racing'} games" for i in range(30)
    ]
    here = TextEncoder(cache=None).encode(texts)
    ray = TextEncoder(cache=tmp_path / "cache.sqlite", ray=RayConfig(replicas=2))
    there = ray.encode(texts)
    assert there.shape == here.shape == (30, 384) and there.dtype == np.float32
    np.testing.assert_allclose(there, here, atol=1e-5)  # other batch padding, same vectors
    again = TextEncoder(cache=tmp_path / "cache.sqlite")
    np.testing.assert_array_equal(again.encode(texts), there)
    assert again._st is None  # all from the cache the shards were written to
