"""The shipped student (SmolLM2-135M-Instruct, from the package registry) distils."""

from __future__ import annotations

import json
import os

import pytest

from slimrec.methods.slim.student import StudentConfig, distill

pytestmark = [
    pytest.mark.network,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("SLIMREC_OFFLINE") == "1", reason="SLIMREC_OFFLINE=1"),
]


def test_smollm2_learns_the_rationale_format(rationales, tmp_path):
    cfg = StudentConfig(epochs=2, lr=3e-3, batch_size=3, grad_accum=1, threads=1, max_length=512)
    results = distill(rationales, cfg, tmp_path / "run")
    assert results["base_model"] == "smollm2-135m"
    assert results["trainable_params"] > 1_000_000  # r=8 on 7 projections x 30 layers
    assert results["valid_loss"] < 0.7 * results["valid_loss_base"]
    config = json.loads((tmp_path / "run" / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 8 and set(config["target_modules"]) >= {"q_proj", "down_proj"}
