"""Fixtures shared across test packages: tiny real LMs and a real ``serve-llm`` endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.llm_server_fixtures import llm_server, llm_server_model, serve_app
from tests.run_fixtures import tiny_run
from tests.tiny_lm import make_tiny_lm

# The suite's models are tiny: a second thread buys nothing, and when another process holds
# a core (a loaded CI machine) OpenMP's waiting threads make every step 10-30x slower.
# The variable carries the same to the commands the tests start.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")

__all__ = ["lively_lm", "llm_server", "llm_server_model", "serve_app", "tiny_lm", "tiny_run"]


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """Folder of a tiny random Llama and its tokenizer (see tests/tiny_lm.py)."""
    return make_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.fixture(scope="session")
def lively_lm(tmp_path_factory) -> Path:
    """The tiny Llama drawn with std 0.2: prompt-dependent answers, and it can learn."""
    return make_tiny_lm(tmp_path_factory.mktemp("lively-lm"), init_std=0.2)
