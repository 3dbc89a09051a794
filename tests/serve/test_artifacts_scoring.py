"""The run locator and the scoring of histories with a given rationale embedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from slimrec.errors import ConfigError
from slimrec.eval import pad_right
from slimrec.methods import load_model
from slimrec.methods.slim.fusion import full_sort_with_text, uses_user_text
from slimrec.pipeline.artifacts import RunArtifacts


def test_artifacts_find_every_piece(tiny_run):
    run = RunArtifacts(tiny_run)
    assert (run.data_dir / "manifest.json").is_file()
    assert (run.adapter / "adapter_config.json").is_file()
    assert run.rationales("student").name == "rationales.parquet"
    assert run.rationales("teacher").is_file()
    found = {(f.backbone, f.method) for f in run.fits()}
    assert found == {("sasrec", "backbone"), ("sasrec", "slim"), (None, "text-matching")}
    assert (run.fit("slim").folder / "best.pt").is_file()
    assert run.fit("text-matching", "sasrec").backbone is None
    assert run.config.name == "ci-tiny"


def test_artifacts_say_what_is_missing(tiny_run, tmp_path):
    with pytest.raises(ConfigError, match="not a slimrec run folder"):
        RunArtifacts(tmp_path)
    with pytest.raises(ConfigError, match=r"no model gru4rec/slim/seed0 .*sasrec/slim/seed0"):
        RunArtifacts(tiny_run).fit("slim", "gru4rec")
    with pytest.raises(ConfigError, match="no stage 'nope'"):
        RunArtifacts(tiny_run).stage("nope")


@pytest.mark.parametrize("method", ["slim", "text-matching", "backbone"])
def test_text_scoring_equals_the_users_own_row(tiny_run, method):
    """Given a user's own rationale embedding, scores equal the model's scores for them."""
    run = RunArtifacts(tiny_run)
    model = load_model(run.fit(method).folder)
    users = torch.tensor([0, 5, 9])
    from slimrec.data import PreparedDataset

    data = PreparedDataset.load(run.data_dir)
    seqs = pad_right([data.sequences[u] for u in users.tolist()], 50)
    lengths = (seqs > 0).sum(1)
    with torch.inference_mode():
        expected = model.full_sort_predict(seqs, lengths, users)
    if uses_user_text(model):
        table = model.user_text if method == "text-matching" else model.user_fusion.user_text
        text = table[users]
    else:
        text = None
    got = full_sort_with_text(model, seqs, lengths, text)
    torch.testing.assert_close(got, expected)
    if text is not None:  # and the text matters
        other = full_sort_with_text(model, seqs, lengths, torch.from_numpy(np.ones_like(text)))
        assert not torch.allclose(other[:, 1:], expected[:, 1:])
