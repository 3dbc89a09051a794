"""Hugging Face Hub model ids (``org/name``, optionally ``org/name@revision``), resolved to
a local folder through the Hub's own cache.

Every place that takes a model (teacher, student, ``serve-llm``, LLM-SRec's LLM, the text
encoder) accepts, besides a shipped name or a local folder, a Hub id. It is downloaded
once (where the machine has internet) into the Hub cache (``$HF_HOME``) and read from
there afterwards. ``HF_HUB_OFFLINE=1`` is honoured, never forced: offline, a cached id
resolves without touching the network, and one that is not cached fails in one line
saying so (instead of retrying a network that is not there).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from slimrec.errors import ConfigError

HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")


def is_hub_id(name: str) -> bool:
    """Whether ``name`` reads as ``org/name`` or ``org/name@revision`` (and is no folder)."""
    return bool(HUB_ID.match(name)) and not Path(name).expanduser().exists()


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def hub_folder(name: str) -> Path:
    """The local snapshot folder of Hub id ``name`` (downloading it unless offline)."""
    match = HUB_ID.match(name)
    if match is None:
        raise ConfigError(f"{name!r} is not a Hugging Face model id", fix="use org/name[@revision]")
    repo, revision = match["repo"], match["revision"]
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError as e:  # pragma: no cover - a dependency of transformers
        raise ConfigError("Hub ids need huggingface_hub", fix="pip install huggingface_hub") from e
    try:
        return Path(
            snapshot_download(
                repo,
                revision=revision,
                local_files_only=offline(),
                allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.py"],
            )
        )
    except LocalEntryNotFoundError as e:
        if offline():
            raise ConfigError(
                f"model {name!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                fix="download it once where there is internet (unset HF_HUB_OFFLINE), or give "
                "a local folder or a shipped name",
            ) from e
        raise ConfigError(
            f"model {name!r} could not be fetched from the Hugging Face Hub "
            f"({str(e).splitlines()[0][:160]})",
            fix="check the id and the network, or set HF_HUB_OFFLINE=1 to use the cache",
        ) from e
    except Exception as e:  # repository not found, gated, revision unknown, HTTP errors
        raise ConfigError(
            f"model {name!r}: {type(e).__name__}: {str(e).splitlines()[0][:160]}",
            fix="check the id, the revision and your access (HF_TOKEN for gated models)",
        ) from e
