"""slimrec serve with the student on llama.cpp (``reason: {engine: llamacpp}``)."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest
import yaml
from tests.lora_fixtures import random_adapter

from slimrec.pipeline.artifacts import RunArtifacts
from slimrec.serve.service import RecommendService

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SLIMREC_OFFLINE") == "1", reason="SLIMREC_OFFLINE=1"),
]
pytest.importorskip("xllamacpp", reason="CI installs slimrec[llamacpp]: never skipped there")


def test_a_new_history_is_explained_by_the_student_on_llama_cpp(tiny_run, tmp_path):
    """The tiny run with a SmolLM2 student (a random adapter in place of the distilled
    one) and ``engine: llamacpp``: the service writes the new history's rationale through
    llama.cpp, the adapter applied there, and recommends from it."""
    run = shutil.copytree(tiny_run, tmp_path / "run")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["student"]["base_model"] = "smollm2-135m"
    config["reason"] = (config.get("reason") or {}) | {"engine": "llamacpp", "batch_size": 2}
    config["reason"]["sampling"] = (config["reason"].get("sampling") or {}) | {"max_new_tokens": 24}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    adapter = RunArtifacts(run).adapter
    shutil.rmtree(adapter)
    random_adapter(adapter, ["q_proj", "v_proj"])
    service = RecommendService(run, method="slim", backbone="sasrec", max_pending=2)
    try:
        assert service.explainer is not None
        assert service.explainer.backend.model_id.startswith("llamacpp:smollm2-135m+lora@")
        result = asyncio.run(service.for_history([1, 2, 3], k=3))
        assert result.explanation is not None and result.explanation.text.strip()
        assert len(result.items) == 3
    finally:
        service.close()
