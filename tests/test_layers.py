"""The import layers: data flows one way, and the heavy libraries stay where they are needed.

raw tables → `tables` → `episodes` → `engine` → `explore`, `money` → `review` → `cli`, `dask`.
A module may import its own package and any package of a lower layer, never a higher one nor a
sibling of its own layer. Every import counts: at the top of a module, inside a function (a
late import is still a dependency) and under `TYPE_CHECKING`. The source is read with `ast`;
nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"

# Lowest first. The foundation modules are plain helpers every layer may use.
LAYERS = (
    {"exceptions", "codes", "_memo", "_toml", "_lazy", "report", "data"},
    {"tables"},
    {"episodes"},
    {"engine"},
    {"explore", "money"},
    {"review"},
    {"cli", "dask", "", "__main__"},  # "" is `nordgroup/__init__.py`, the public names
)
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}

# Which modules may import which heavy library (a module path, or a whole package ending in ".").
ALLOWED = {
    "numba": ("engine.kernel", "episodes._text"),
    "pysat": ("explore._search",),
    "matplotlib": ("report",),
}
# Reading tables, the reference grouper, the table questions' grammar: no Arrow, so they start fast.
WITHOUT_ARROW = (
    "tables.",
    "codes",
    "exceptions",
    "_memo",
    "_toml",
    "_lazy",
    "engine.reference",
    "engine.compile",
    "cli.grammar",
)


def _modules() -> dict[str, list[str]]:
    """Each module of the package (dotted, without `nordgroup.`) and every module it imports."""
    found = {}
    for path in sorted((SOURCE / "nordgroup").rglob("*.py")):
        parts = list(path.relative_to(SOURCE / "nordgroup").with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        imported = []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.append(node.module)
                if node.module == "nordgroup":  # `from nordgroup import x` may name a module
                    imported += [f"nordgroup.{alias.name}" for alias in node.names]
        found[".".join(parts)] = imported
    return found


MODULES = _modules()


def _top(module: str) -> str:
    """The first part of a dotted module path: its package or foundation module."""
    return module.split(".")[0]


def _within(module: str, allowed: tuple[str, ...]) -> bool:
    return any(module == entry or (entry.endswith(".") and module.startswith(entry)) for entry in allowed)


def test_every_package_and_module_has_a_layer():
    assert {_top(module) for module in MODULES} <= set(LAYER_OF)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_or_sideways_import(module):
    own = _top(module)
    wrong = []
    for imported in MODULES[module]:
        if imported != "nordgroup" and not imported.startswith("nordgroup."):
            continue
        target = imported.removeprefix("nordgroup").removeprefix(".")
        if _top(target) == own or _top(target) not in LAYER_OF:  # own package, or a public name
            continue
        level, own_level = LAYER_OF[_top(target)], LAYER_OF[own]
        # the top layer is the one whose modules may use each other (the CLI calls the public names)
        if level > own_level or (level == own_level and own_level != LAYER_OF[""]):
            wrong.append(imported)
    assert not wrong, f"nordgroup.{module} imports a layer at or above its own: {wrong}"


@pytest.mark.parametrize("library", sorted(ALLOWED))
def test_heavy_libraries_only_where_allowed(library):
    users = {module for module, imported in MODULES.items() if any(_top(name) == library for name in imported)}
    assert users, f"no module imports {library}: the rule is stale"
    assert {module for module in users if not _within(module, ALLOWED[library])} == set()


def test_table_reading_and_the_reference_need_no_arrow():
    users = {module for module, imported in MODULES.items() if any(_top(name) == "pyarrow" for name in imported)}
    assert {module for module in users if _within(module, WITHOUT_ARROW)} == set()


def test_the_checks_see_a_planted_upward_import(monkeypatch):
    """The rule itself can fail: a model that imports the reachability search is caught."""
    monkeypatch.setitem(MODULES, "tables.model", [*MODULES["tables.model"], "nordgroup.explore.reachability"])
    with pytest.raises(AssertionError, match=r"tables\.model imports a layer"):
        test_no_upward_or_sideways_import("tables.model")
