"""Hugging Face Hub ids resolve through the Hub's own cache; offline is honoured."""

from __future__ import annotations

import shutil

import pytest

from slimrec.errors import ConfigError
from slimrec.hub import is_hub_id
from slimrec.llm.backends.hf import model_identity
from slimrec.llm.models import resolve_model

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_cache(tmp_path, tiny_lm, monkeypatch):
    """A Hub cache holding ``slimrec-tests/tiny-llama`` at one commit, as a download leaves it."""
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--slimrec-tests--tiny-llama"
    shutil.copytree(tiny_lm, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return repo / "snapshots" / COMMIT


def test_a_cached_hub_id_resolves_offline_with_or_without_a_revision(hub_cache):
    assert resolve_model("slimrec-tests/tiny-llama") == hub_cache
    assert resolve_model(f"slimrec-tests/tiny-llama@{COMMIT}") == hub_cache
    ident = model_identity("slimrec-tests/tiny-llama")
    assert ident.startswith("slimrec-tests/tiny-llama@") and COMMIT not in ident


def test_an_uncached_hub_id_offline_is_one_line_saying_so(hub_cache):
    with pytest.raises(ConfigError, match="not in the Hugging Face cache and HF_HUB_OFFLINE") as e:
        resolve_model("slimrec-tests/other-model")
    assert "\n" not in e.value.one_line()


def test_the_student_and_llm_srec_load_a_hub_id(hub_cache):
    from slimrec.llm.local import resolve_base
    from slimrec.llm.soft_prompt import FrozenLM

    assert resolve_base("slimrec-tests/tiny-llama") == hub_cache
    assert FrozenLM(resolve_base("slimrec-tests/tiny-llama")).hidden_size == 32


def test_what_reads_as_a_hub_id(tmp_path):
    assert is_hub_id("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert is_hub_id("Qwen/Qwen2.5-0.5B@main")
    assert not is_hub_id("smollm2-135m") and not is_hub_id("a/b/c")
    (tmp_path / "org").mkdir()
    assert not is_hub_id(str(tmp_path / "org"))  # an existing path is a path
    with pytest.raises(ConfigError, match="neither a registry name, a folder nor a Hub id"):
        resolve_model("no such model")


def test_a_hub_named_encoder_offline_and_uncached_is_one_line_at_once(hub_cache):
    from slimrec.text.encoder import resolve_encoder_path

    with pytest.raises(ConfigError, match="not in the Hugging Face cache") as e:
        resolve_encoder_path("sentence-transformers/all-mpnet-base-v2")
    assert "\n" not in e.value.one_line()
