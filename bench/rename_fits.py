"""Carry a run folder's finished fits over to a method's new registered name.

A fit stage is keyed by the method's name (slimrec.pipeline.stages.fit_stage), so when a
registered name changes (say ``slim-gate`` became ``slim`` if the gate became the
default fusion) the committed fits of a long run (bench/runs/) would all be trained
again. This renames them instead, but only where the new name trains exactly what the
old one did: the record's method inputs (e.g. ``fusion``) must equal what the new name's
method puts into its key today (``Method.stage_inputs``), the record may carry no run
``options``, and the fit's ``structure.json`` must hold the new name's method config.
Each fit's ``stage.json`` (name, inputs, key), its folder name and the method named in
``config.yaml``, ``structure.json`` and ``results.json`` change; nothing else. Renames
run old -> new in the order given, so ``slim -> slim-residual`` must come before
``slim-gate -> slim``. Without ``--apply`` it prints what it would do.

Usage:
    .venv/bin/python bench/rename_fits.py bench/runs/amazon-games \
        --rename slim slim-residual --rename slim-gate slim --apply
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from slimrec.io import write_json_atomic, write_text_atomic
from slimrec.methods import get_method
from slimrec.pipeline.stage import MANIFEST, StageRunner, stage_key

COMMON = {"data", "items", "users", "method", "train", "backbone_revision", "options", "teacher"}


def fits_of(run: Path, method: str) -> list[Path]:
    found = []
    for manifest in sorted(run.glob(f"stages/fit-*/{MANIFEST}")):
        record = json.loads(manifest.read_text())
        if record["inputs"].get("method") == method:
            found.append(manifest.parent)
    return found


def renamed(folder: Path, old: str, new: str) -> tuple[dict, Path]:
    """The new ``stage.json`` record and folder of one fit, after checking it may move."""
    record = json.loads((folder / MANIFEST).read_text())
    inputs = dict(record["inputs"])
    own = {k: v for k, v in inputs.items() if k not in COMMON}
    method = get_method(new)
    if own != method.stage_inputs() or inputs.get("options"):
        sys.exit(
            f"{folder}: {old} was fitted with {own or 'no method inputs'}, {new} now "
            f"trains with {method.stage_inputs() or 'none'}: it would not be the same fit"
        )
    # The whole method config (control, rationales, ...) is not in the key but in the
    # fit's structure.json: the new name must preset exactly that.
    structure = folder / "structure.json"
    fitted = json.loads(structure.read_text()).get("config") if structure.exists() else None
    if fitted is None or fitted != method.config.model_dump(mode="json"):
        sys.exit(f"{folder}: {new}'s config is not the one {old} was fitted with ({fitted})")
    inputs["method"] = new
    parts = record["name"].split("/")  # fit/<backbone>/<method>/seed<n>
    if parts[-2] != old:
        sys.exit(f"{folder}: stage {record['name']!r} does not name {old}")
    parts[-2] = new
    name = "/".join(parts)
    key = stage_key(name, inputs)
    target = StageRunner(folder.parent.parent).folder(name, key)
    return {**record, "name": name, "key": key, "inputs": inputs}, target


def rewrite_method(folder: Path, old: str, new: str) -> None:
    """The method named inside the fit's own files."""
    config = folder / "config.yaml"
    if config.exists():
        data = yaml.safe_load(config.read_text())
        if data.get("method") == old:
            data["method"] = new
            write_text_atomic(config, yaml.safe_dump(data, sort_keys=False))
    for file in ("structure.json", "results.json"):
        path = folder / file
        if path.exists():
            data = json.loads(path.read_text())
            if data.get("method") == old:
                data["method"] = new
                write_json_atomic(path, data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--rename", nargs=2, action="append", metavar=("OLD", "NEW"),
                        required=True)  # fmt: skip
    parser.add_argument("--apply", action="store_true", help="rename (default: only print)")
    args = parser.parse_args(argv)
    for old, new in args.rename:
        if fits_of(args.run, new):
            sys.exit(f"{args.run}: fits of {new} exist already; rename them first")
        for folder in fits_of(args.run, old):
            record, target = renamed(folder, old, new)
            print(f"{folder.name} -> {target.name}")
            if args.apply:  # the manifest last: until then the stage reads as unfinished
                folder.rename(target)
                rewrite_method(target, old, new)
                write_json_atomic(target / MANIFEST, record)


if __name__ == "__main__":
    main()
