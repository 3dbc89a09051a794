"""Typed configs round-tripped to YAML, with one-line errors naming the file and field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ValidationError, model_serializer

from slimrec.errors import ConfigError, SlimrecError
from slimrec.io import write_text_atomic

M = TypeVar("M", bound=BaseModel)


class LaterSettingsOmitted(BaseModel):
    """A config whose settings added after a release are left out of dumps while off.

    Dumps feed cache keys and stage hashes; omitting a new setting at its "off" value
    keeps the keys of runs made before it existed valid. ``LATER_OFF`` maps each such
    setting to its off value.
    """

    LATER_OFF: ClassVar[dict[str, Any]] = {}

    @model_serializer(mode="wrap")
    def _omit_later_settings_while_off(self, handler):
        data = handler(self)
        for name, off in self.LATER_OFF.items():
            if getattr(self, name) == off:
                data.pop(name, None)
        return data


def field_values(model: BaseModel, exclude: Collection[str] = ()) -> dict[str, Any]:
    """A config's fields by name, as they are: what to build another config from. Not
    ``model_dump()``: a dump redacts the credentials of endpoint URLs, since dumps feed
    files and cache keys, so a config rebuilt from one would call the redacted URL."""
    return {n: getattr(model, n) for n in type(model).model_fields if n not in exclude}


def validation_line(error: ValidationError) -> str:
    """The first problem of a pydantic error, as ``field.path: message``."""
    first = error.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    # A validator's own message says what is wrong already, without pydantic's prefix.
    message = first["msg"].removeprefix("Value error, ")
    return f"invalid value for {field}: {message}{more}" if field else f"{message}{more}"


class _DuplicateKey(yaml.YAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, except that a mapping naming one key twice is an error.

    Plain YAML keeps the last of the two silently, so a config with two ``train:``
    sections would run with the first one's settings dropped.
    """

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # the base loader refuses unhashable keys itself
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(f"key {key!r} appears twice (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(cls: type[M], path: str | Path) -> M:
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except FileNotFoundError as e:
        raise ConfigError("no such config file", where=path) from e
    except _DuplicateKey as e:
        raise ConfigError(str(e), where=path, fix="keep one of them") from e
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid YAML ({str(e).splitlines()[0]})", where=path) from e
    except OSError as e:  # a folder, or a file this user may not read
        raise ConfigError(
            f"cannot read the config ({e.strerror or e})", where=path, fix="pass a YAML file"
        ) from e
    if data is None:  # an empty file would silently run every default
        raise ConfigError(
            "the config file is empty",
            where=path,
            fix="write its settings (configs/quickstart.yaml is a complete example)",
        )
    return parse(cls, data, where=path)


def parse(
    cls: type[M], data: object, *, where: str | Path | None = None, flags: Collection[str] = ()
) -> M:
    """``data`` validated as ``cls``; an error names ``where`` it came from, or the command
    line's ``--flag`` when the failing top-level field is one of ``flags``."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        loc = e.errors()[0]["loc"]
        fix = f"see the fields of {cls.__name__}"
        if loc and str(loc[0]) in flags:
            where = f"--{str(loc[0]).replace('_', '-')}"
            fix = f"see {where} in --help"
        # A validator that raised our own error said what, and how to fix it, already.
        cause = (e.errors()[0].get("ctx") or {}).get("error")
        cause = cause.__cause__ if isinstance(cause, ValueError) else cause  # re-raised as one
        if isinstance(cause, SlimrecError):
            raise type(cause)(cause.problem, where=where or cause.where, fix=cause.fix) from e
        raise ConfigError(validation_line(e), where=where, fix=fix) from e


def save_yaml(config: BaseModel, path: str | Path) -> None:
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    write_text_atomic(path, text)


def config_hash(*parts: object) -> str:
    """A stable short hash of configs and other JSON-able inputs (cache keys)."""
    blob = json.dumps(
        [p.model_dump(mode="json") if isinstance(p, BaseModel) else p for p in parts],
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
