"""``backend: auto``: the fastest engine installed here for the model and the device."""

from __future__ import annotations

import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import torch

from slimrec.errors import ConfigError
from slimrec.llm.backends import BackendConfig, engine_version, resolve_backend
from slimrec.methods.slim.teach import TeacherConfig


def test_an_explicit_backend_is_kept_and_auto_with_an_endpoint_is_openai():
    for name in ("hf", "llamacpp", "vllm", "openai"):
        assert resolve_backend(BackendConfig(backend=name)) == name
    endpoint = BackendConfig(backend="auto", base_url="http://127.0.0.1:9/v1")
    assert resolve_backend(endpoint) == "openai"


def test_auto_on_the_cpu_runs_a_gguf_through_llama_cpp_and_a_folder_through_hf(
    tmp_path, monkeypatch
):
    pytest.importorskip("xllamacpp", reason="CI installs slimrec[llamacpp]: never skipped there")
    cpu = {"backend": "auto", "device": "cpu"}
    assert resolve_backend(BackendConfig(**cpu, model="smollm2-135m")) == "llamacpp"
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_backend(BackendConfig(**cpu, model=str(gguf))) == "llamacpp"
    assert resolve_backend(BackendConfig(**cpu, model=str(tmp_path))) == "hf"  # a folder
    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # as if not installed
    assert resolve_backend(BackendConfig(**cpu, model="smollm2-135m")) == "hf"


@pytest.mark.parametrize(
    ("bf16", "installed", "in_flight", "dtype", "engine"),
    [
        (True, True, 32, "auto", "vllm"),
        (True, True, 32, "bfloat16", "vllm"),
        (True, True, 16, "auto", "hf"),  # few at once: llama.cpp (or hf) answers sooner
        (True, True, 32, "float32", "hf"),  # vLLM in fp32 on a CPU: not measured faster
        (False, True, 32, "auto", "hf"),  # bf16 emulated: ~50x slower
        (True, False, 32, "auto", "hf"),  # vLLM's environment not set up
    ],
)
def test_auto_on_a_cpu_batches_through_vllm_only_where_it_was_measured_faster(
    tmp_path, monkeypatch, bf16, installed, in_flight, dtype, engine
):
    from slimrec.llm.backends import vllm

    monkeypatch.setattr("slimrec.machine.native_bf16", lambda: bf16)
    monkeypatch.setattr(vllm, "vllm_version", lambda: "0.32.0" if installed else None)
    config = {"backend": "auto", "device": "cpu", "batch_size": in_flight, "dtype": dtype}
    assert resolve_backend(BackendConfig(**config, model=str(tmp_path))) == engine


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_auto_asked_for_a_gpu_that_is_not_there_is_one_line():
    with pytest.raises(ConfigError, match="CUDA is not available") as error:
        resolve_backend(BackendConfig(backend="auto", device="cuda"))
    assert "\n" not in error.value.one_line()


def test_a_structured_teacher_refuses_an_auto_that_finds_only_hf(tmp_path):
    teacher = TeacherConfig(backend="auto", model=str(tmp_path), device="cpu", structured=True)
    with pytest.raises(ConfigError, match="structured output needs") as error:
        teacher.engine()
    assert "slimrec[llamacpp]" in error.value.one_line()


def test_an_auto_teacher_shares_the_stage_of_the_engine_it_found():
    from slimrec.pipeline.config import TeacherSection
    from slimrec.pipeline.stages import teach_stage

    auto = TeacherSection(backend="auto", model="smollm2-135m", device="cpu")
    found = auto.model_copy(update={"backend": resolve_backend(auto)})
    where = (Path("data"), "data-key", Path("run"))
    assert teach_stage(auto, *where)[0] == teach_stage(found, *where)[0]


def test_engine_versions_name_what_runs_here():
    assert engine_version("hf") == version("transformers")
    assert engine_version("openai") is None  # a remote server: not ours to ask
