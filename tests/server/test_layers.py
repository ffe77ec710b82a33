"""The server's wings import each other in one direction only, checked on the source with ``ast``.

web/ sits on top (only the modules that assemble the app reach into it), store/ at the bottom (SQL
and nothing else, so a second database can sit behind the same interface), and only store/ talks
to SQLite or PostgreSQL.
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVER = ROOT / "server"
PACKAGE = "assay"  # server/ installs as assay (pyproject.toml)

ASSEMBLE_THE_APP = {"assay", "assay.cli"}
STORE_MAY_NOT_IMPORT = ("assay.learning", "assay.evaluation", "assay.domain", "assay.web", "assay.models",
                        "assay.features", "assay.strategies", "assay.webhooks")
DATABASE_DRIVERS = ("sqlite3", "sqlite_utils", "psycopg")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(SERVER).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def _package_of(path: pathlib.Path, module: str) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imported_names(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved against its package.

    ``from . import store`` counts as importing ``assay.store``: the names after ``import`` may be modules.
    """
    module = _module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _package_of(path, module).split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            out.append((node.lineno, origin))
            out += [(node.lineno, f"{origin}.{alias.name}") for alias in node.names]
    return out


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


SOURCES = sorted(SERVER.rglob("*.py"))


def test_the_resolver_handles_relative_imports():
    names = {name for _, name in imported_names(SERVER / "store" / "__init__.py")}
    assert any(_within(name, ["assay.store"]) for name in names)
    names = {name for _, name in imported_names(SERVER / "web" / "api" / "annotate.py")}
    assert "assay.web.api.base" in names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(SERVER)))
def test_the_wings_import_in_one_direction(path):
    module = _module_name(path)
    wrong = []
    for line, name in imported_names(path):
        if _within(name, ["assay.web"]) and not _within(module, ["assay.web"]) and module not in ASSEMBLE_THE_APP:
            wrong.append(f"line {line}: {name} (only web/, assay/__init__ and assay.cli use the web layer)")
        if _within(module, ["assay.store"]) and _within(name, STORE_MAY_NOT_IMPORT):
            wrong.append(f"line {line}: {name} (store/ holds SQL only; pass what it needs as arguments)")
        if _within(name, DATABASE_DRIVERS) and not _within(module, ["assay.store"]):
            wrong.append(f"line {line}: {name} (only store/ talks to the database)")
    assert not wrong, f"{path.relative_to(ROOT)} imports across the layers:\n" + "\n".join(wrong)


MODULES = {_module_name(path): path for path in SOURCES}


def _imported_modules(path: pathlib.Path) -> set[str]:
    """The server modules this file imports, lazily or not: ``from X import Y`` is X.Y when that is a module,
    else X. The file's own packages are left out: Python runs them before the file in any case."""
    module = _module_name(path)
    out = set()
    tree = ast.parse(path.read_text(), filename=str(path))
    for line, name in imported_names(path):
        parts = name.split(".")
        for k in range(len(parts), 0, -1):
            if ".".join(parts[:k]) in MODULES:
                out.add(".".join(parts[:k]))
                break
    # `from X import Y` names both X and X.Y: X.Y is what is imported when it is a module.
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = next((n for ln, n in imported_names(path) if ln == node.lineno), None)
            if base in MODULES and any(f"{base}.{a.name}" in MODULES for a in node.names) and \
                    not any(f"{base}.{a.name}" not in MODULES for a in node.names):
                out.discard(base)
    ancestors = {".".join(module.split(".")[:k]) for k in range(1, module.count(".") + 1)}
    return out - ancestors - {module}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_loop():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


def test_no_two_files_import_each_other_even_lazily():
    graph = {module: _imported_modules(path) for module, path in MODULES.items()}
    assert import_cycles(graph) == []
