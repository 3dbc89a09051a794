"""``slimrec teach`` with a local teacher on a real local Ray cluster (two replicas): the
same answers as in one process, stored in the same cache, so a second run asks nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError
from tests.methods.slim.test_teach import data  # noqa: F401 (fixture)

from slimrec.cluster import RayConfig
from slimrec.llm.backends.base import SamplingConfig
from slimrec.methods.slim.teach import TeacherConfig, teach

# Starts Ray or vLLM: scripts/test.sh runs these in a process of their own (-m engine).
pytestmark = pytest.mark.engine


def local_teacher(lm, **kw) -> TeacherConfig:
    sampling = SamplingConfig(max_new_tokens=12)
    return TeacherConfig(backend="hf", model=str(lm), batch_size=1, sampling=sampling, **kw)


def test_a_local_teacher_on_ray_answers_as_in_one_process(lively_lm, data, tmp_path, monkeypatch):  # noqa: F811
    pytest.importorskip("ray")  # the [ray] extra; CI installs it, so this never skips there
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    here = teach(data, tmp_path / "here.parquet", local_teacher(lively_lm), n_users=8,
                 cache=tmp_path / "here.sqlite", progress=False)  # fmt: skip
    on_ray = local_teacher(lively_lm, ray=RayConfig(replicas=2))
    there = teach(data, tmp_path / "ray.parquet", on_ray, n_users=8,
                  cache=tmp_path / "ray.sqlite", progress=False)  # fmt: skip
    assert here.asked == there.asked == 8  # two shards of four (4 x batch size 1)
    a, b = pd.read_parquet(here.path), pd.read_parquet(there.path)
    pd.testing.assert_frame_equal(a.drop(columns="cached"), b.drop(columns="cached"))
    again = teach(data, tmp_path / "ray.parquet", on_ray, n_users=8,
                  cache=tmp_path / "ray.sqlite", progress=False)  # fmt: skip
    assert again.asked == 0 and again.cached == 8


def test_ray_is_for_local_teachers():
    with pytest.raises(ValidationError, match=r"endpoint .* already spreads"):
        TeacherConfig(backend="openai", base_url="http://127.0.0.1:8000/v1", ray=RayConfig())
