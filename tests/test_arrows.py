"""Every import arrow runs down: generic layers never import the ones built on them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "slimrec"
# Lower layers first; a module may import only from strictly lower layers (or itself).
LAYERS = [
    {"errors"},
    {"progress"},
    {"io"},
    {"config", "wheels", "hub", "devices", "machine", "memory", "cluster"},
    {"data", "eval", "backbones", "text"},
    {"llm", "training"},
    {"methods"},
    {"pipeline"},
    {"serve"},
    {"cli"},
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def imports(file: Path) -> set[str]:
    """The top-level slimrec subpackages ``file`` imports (at any depth, lazily or not)."""
    found = set()
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("slimrec.")}
    return found


def test_every_import_arrow_runs_down():
    upward = []
    for file in sorted(PACKAGE.rglob("*.py")):
        parts = file.relative_to(PACKAGE).parts
        own = parts[0].removesuffix(".py")
        if own == "__init__":
            continue
        assert own in RANK, f"{own}: place the new package in LAYERS"
        for target in imports(file) - {own}:
            assert target in RANK, f"{target}: place the new package in LAYERS"
            if RANK[target] >= RANK[own]:
                upward.append(f"{file.relative_to(PACKAGE)} imports slimrec.{target}")
    assert not upward, upward


def test_the_checker_sees_lazy_imports(tmp_path):
    file = tmp_path / "m.py"
    file.write_text("def f():\n    from slimrec.methods.base import Method\n")
    assert imports(file) == {"methods"}
