"""Data flows one way (STYLE.md): no layer imports one above it, configuration is read at the
top, and the few modules below every layer import nothing of the product."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "learnhours"

# layer -> the layers it must never import
FORBIDDEN = {
    "extractors": {"warehouse", "ingest", "notifiers", "steps", "flows", "cli"},
    "transforms": {"extractors", "warehouse", "ingest", "notifiers", "steps", "flows", "cli"},
    # Rules as data, below the transforms that judge people with them.
    "plans": {"transforms", "extractors", "warehouse", "ingest", "notifiers", "steps", "flows",
              "cli"},
    "warehouse": {"extractors", "ingest", "notifiers", "steps", "flows", "cli"},
    "ingest": {"notifiers", "steps", "flows", "cli"},
    "notifiers": {"extractors", "ingest", "steps", "flows", "cli"},
    "emulator": {"warehouse", "ingest", "notifiers", "steps", "flows", "cli"},
    # The service layer: the command line and the flow call it; it calls neither.
    "steps": {"flows", "cli"},
}
# Configuration is read once, by the command line and the flows, which hand each layer what it
# needs: no layer below them reads the settings.
BELOW_SETTINGS = (
    "extractors",
    "transforms",
    "warehouse",
    "ingest",
    "notifiers",
    "plans",
    "emulator",
)
# Below every layer (Taipei's calendar, hours written plainly): they import nothing of the product.
FOUNDATIONS = ("taipei.py", "plain_hours.py", "private.py")
# Storage stores: in the warehouse only the SQL built from a plan's rules reads a plan.
PLAN_SQL = "learnhours/warehouse/plan_queries.py"


def imported(source: str, module: str) -> set[str]:
    """Every learnhours module a module's source imports, in any form, anywhere in it (inside
    functions too): `import learnhours.a.b`, `from learnhours.a import b` (both learnhours.a and
    learnhours.a.b, for b may be a module), `from learnhours import a`, and relative imports
    resolved against `module` (its dotted name)."""
    package = module.split(".")[:-1]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            names.add(origin)
            names.update(f"{origin}.{a.name}" for a in node.names if a.name != "*")
    return {n for n in names if n == "learnhours" or n.startswith("learnhours.")}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports_of(path: Path) -> set[str]:
    # A package's __init__ resolves `from . import x` against itself.
    module = _module(path) + (".__init__" if path.name == "__init__.py" else "")
    return imported(path.read_text(encoding="utf-8"), module)


def _layer_files(layer: str) -> list[Path]:
    return [p for p in (PACKAGE / layer).rglob("*.py") if "migrations" not in p.parts]


def _layers(names: set[str]) -> set[str]:
    return {n.split(".")[1] for n in names if n.count(".") >= 1}


def _within(names: set[str], module: str) -> list[str]:
    return sorted(n for n in names if n == module or n.startswith(module + "."))


def test_every_import_form_is_seen():
    source = """
import learnhours.warehouse.record_queries
from learnhours import settings
from learnhours.transforms.dates import parse_date
from . import describe
from ..notifiers import notices
from .schema import Plan

def later():
    import learnhours.flows.steps as steps
    from learnhours.extractors import tables
"""
    found = imported(source, "learnhours.plans.files")
    assert {
        "learnhours.warehouse.record_queries",
        "learnhours.settings",
        "learnhours.transforms.dates",
        "learnhours.plans.describe",
        "learnhours.notifiers.notices",
        "learnhours.plans.schema",
        "learnhours.flows.steps",
        "learnhours.extractors.tables",
    } <= found
    assert _layers(found) >= {"warehouse", "settings", "transforms", "notifiers", "flows"}
    assert imported("from . import x", "learnhours.plans.__init__") == {
        "learnhours.plans",
        "learnhours.plans.x",
    }


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_a_layer_above_it(layer):
    files = _layer_files(layer)
    assert files, f"no layer {layer}: the rule would check nothing"
    offenders = {
        path.relative_to(ROOT).as_posix(): sorted(_layers(_imports_of(path)) & FORBIDDEN[layer])
        for path in files
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}


@pytest.mark.parametrize("layer", BELOW_SETTINGS)
def test_no_layer_below_the_flows_reads_the_settings(layer):
    offenders = {
        path.relative_to(ROOT).as_posix(): _within(_imports_of(path), "learnhours.settings")
        for path in _layer_files(layer)
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}


@pytest.mark.parametrize("name", FOUNDATIONS)
def test_the_modules_below_every_layer_import_nothing_of_the_product(name):
    assert _imports_of(PACKAGE / name) == set()


def test_nothing_below_the_command_imports_it():
    """The `learnhours` command (learnhours/cli/) is the top: the flows, their steps and every
    module under them work without it, so a deployment's run never imports the command line."""
    command = PACKAGE / "cli"
    below = [p for p in PACKAGE.rglob("*.py") if command not in p.parents]
    assert any(p.parts[-2:] == ("flows", "nightly.py") for p in below)
    offenders = {
        path.relative_to(ROOT).as_posix(): _within(_imports_of(path), "learnhours.cli")
        for path in below
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}


def test_only_the_plan_sql_in_the_warehouse_reads_a_plan():
    assert (ROOT / PLAN_SQL).exists()
    readers = {
        path.relative_to(ROOT).as_posix()
        for path in (PACKAGE / "warehouse").rglob("*.py")
        if _within(_imports_of(path), "learnhours.plans")
    }
    assert readers == {PLAN_SQL}
