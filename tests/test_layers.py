"""Data flows one way (STYLE.md): no layer imports one above it."""

from __future__ import annotations

import ast

import pytest

from tests.conftest import ROOT

# layer -> the layers it must never import
FORBIDDEN = {
    "extractors": {"warehouse", "ingest", "notifiers", "flows"},
    "transforms": {"extractors", "warehouse", "ingest", "notifiers", "flows"},
    "warehouse": {"extractors", "ingest", "notifiers", "flows"},
    "ingest": {"notifiers", "flows"},
    "notifiers": {"extractors", "ingest", "flows"},
    "emulator": {"warehouse", "ingest", "notifiers", "flows"},
}


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n.split(".")[1] for n in names if n.startswith("learnhours.") and n.count(".") >= 1}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_a_layer_above_it(layer):
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(_imports(path) & FORBIDDEN[layer])
        for path in (ROOT / "learnhours" / layer).rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}
