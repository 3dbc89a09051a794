"""Typed configs round-tripped to YAML, with one-line errors naming the file and field."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Sequence
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


def load_yaml(cls: type[M], path: str | Path, settings: Sequence[str] = ()) -> M:
    """``cls`` from the YAML file at ``path``, with each ``KEY.PATH=VALUE`` of
    ``settings`` (the command line's ``--set``) on top; see :func:`with_settings`."""
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
    if settings and not isinstance(data, dict):
        raise ConfigError("the config is not a mapping of settings", where=path)
    if settings:
        data = with_settings(data, settings)
    keys = [setting.partition("=")[0].strip() for setting in settings]
    return parse(cls, data, where=path, set_keys=keys)


def with_settings(data: dict, settings: Sequence[str]) -> dict:
    """``data`` (a config file's mapping, not changed) with each ``KEY.PATH=VALUE`` set.

    VALUE is read as YAML (``seeds=[0]``, ``train.lr=0.0003``, ``teacher.model=qwen``); a
    dotted path makes the sections it names. In a list, a number picks an entry and a name
    picks the entry naming it, so ``methods.llm-srec.epochs=3`` reaches the settings of
    ``- llm-srec: {...}`` (or of a plain ``- llm-srec``); a list of such entries set anew
    keeps the settings of the entries it names again.
    """
    data = copy.deepcopy(data)
    for setting in settings:
        key, eq, text = setting.partition("=")
        key = key.strip()
        where = f"--set {key or setting}"
        if not eq or not key or "" in key.split("."):
            raise ConfigError(
                f"{setting!r} is not KEY=VALUE", where="--set", fix="e.g. --set train.epochs=3"
            )
        try:
            value = yaml.load(text, Loader=_StrictLoader)
        except (yaml.YAMLError, _DuplicateKey) as e:
            raise ConfigError(
                f"the value is not valid YAML ({str(e).splitlines()[0]})", where=where
            ) from e
        *sections, last = key.split(".")
        node: Any = data
        for name in sections:
            node = _child(node, name, where)
        if isinstance(node, list):
            index = _entry(node, last, where)
            node[index] = value if last.isdigit() else {last: value}
        elif isinstance(node, dict):
            old = node.get(last)
            if isinstance(old, list) and isinstance(value, list):
                value = _keep_settings(old, value)
            node[last] = value
        else:
            raise ConfigError(f"{key.rpartition('.')[0]!r} is not a section", where=where)
    return data


def _keep_settings(old: list, new: list) -> list:
    """``new``, whose plain names take the settings their entries had in ``old``:
    ``--set 'methods=[backbone, llm-srec]'`` keeps the file's ``- llm-srec: {...}``."""
    named = {
        next(iter(entry)): entry for entry in old if isinstance(entry, dict) and len(entry) == 1
    }
    return [named.get(entry, entry) if isinstance(entry, str) else entry for entry in new]


def _entry(items: list, name: str, where: str) -> int:
    """Where ``name`` (a position, or the name an entry gives) is in ``items``; a plain
    ``- name`` entry becomes ``- name: {}``, to hold settings."""
    if name.isdigit():
        if int(name) >= len(items):
            raise ConfigError(
                f"the list has {len(items)} entries, not {int(name) + 1}", where=where
            )
        return int(name)
    for i, entry in enumerate(items):
        if entry == name:
            items[i] = {name: {}}
            return i
        if isinstance(entry, dict) and list(entry) == [name]:
            return i
    raise ConfigError(f"no entry {name!r} in the list", where=where, fix="add it in the file")


def _child(node: Any, name: str, where: str) -> Any:
    """The section ``name`` of ``node``, made empty when missing."""
    if isinstance(node, dict):
        if node.get(name) is None:
            node[name] = {}
        return node[name]
    if isinstance(node, list):
        entry = node[_entry(node, name, where)]
        if isinstance(entry, dict) and not name.isdigit():
            if entry[name] is None:
                entry[name] = {}
            return entry[name]
        return entry
    raise ConfigError(f"{name!r} is inside a value that is not a section", where=where)


def parse(
    cls: type[M],
    data: object,
    *,
    where: str | Path | None = None,
    flags: Collection[str] = (),
    set_keys: Collection[str] = (),
) -> M:
    """``data`` validated as ``cls``; an error names ``where`` it came from, the command
    line's ``--flag`` when the failing top-level field is one of ``flags``, or ``--set
    KEY`` when a ``set_keys`` key gave the failing field."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        loc = e.errors()[0]["loc"]
        fix = f"see the fields of {cls.__name__}"
        path = ".".join(str(part) for part in loc)
        if loc and str(loc[0]) in flags:
            where = f"--{str(loc[0]).replace('_', '-')}"
            fix = f"see {where} in --help"
        given = [key for key in set_keys if path == key or path.startswith(key + ".")]
        if not given and not path:  # a whole-config check, e.g. a method's settings
            message = e.errors()[0]["msg"]
            given = [key for key in set_keys if f"'{key.split('.')[:2][-1]}'" in message]
        if given:
            where = f"--set {given[-1]}"
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
