"""The wings import each other in one direction only, checked on the source with ``ast``.

Every module of ``assay`` (server/) and ``assay.strategies`` (strategies/) belongs to a wing: a folder of
server/ (web, domain, store, ...), a module at its top (cli, errors, ...), the strategies, or the package's
own ``__init__`` (create_app). TIERS lists the wings from the top down, as ARCHITECTURE.md draws them: a wing
imports only the wings of the tiers below its own, so no two wings import each other, and no two files do
either, lazily or not, through any chain. Only store/ talks to SQLite or PostgreSQL.
"""
from __future__ import annotations

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = {"assay": ROOT / "server", "assay.strategies": ROOT / "strategies"}  # pyproject.toml's package-dir

# ARCHITECTURE.md's "Who imports whom", from the top down. A wing imports only the wings of the rows below its
# own; the wings of one row import nothing of each other. ARCHITECTURE.md draws the same rows (checked below).
TIERS = (
    ("create_app",),  # server/__init__.py: builds the app out of everything below
    ("cli",),
    ("instance", "services"),
    ("web",),
    ("simulate",),
    ("domain",),
    ("learning",),
    ("webhooks",),
    ("models", "features", "evaluation"),
    ("store", "strategies"),
    ("client", "config", "plots", "plugins", "running"),
    ("errors",),
)
DATABASE_DRIVERS = ("sqlite3", "sqlite_utils", "psycopg")


def module_files(packages: dict[str, pathlib.Path]) -> dict[str, pathlib.Path]:
    """Module name -> file, for every ``.py`` file under each package's folder."""
    out = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join([package, *parts])] = path
    return out


def import_statements(path: pathlib.Path, module: str) -> list[tuple[int, str | None, list[str]]]:
    """Every import in the file, inside functions too, relative ones resolved: (line, "X", ["X.a", "X.b"]) for
    ``from X import a, b`` (a and b may be modules), (line, None, ["a", "b"]) for ``import a, b``."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out.append((node.lineno, None, [alias.name for alias in node.names]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module
            out.append((node.lineno, origin, [f"{origin}.{alias.name}" for alias in node.names]))
    return out


def imported_names(path: pathlib.Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute name) of every import in the file: ``from X import Y`` gives both X and X.Y."""
    return [(line, name) for line, origin, names in import_statements(path, module)
            for name in ([origin] if origin else []) + names]


def imported_modules(path: pathlib.Path, module: str, modules) -> set[str]:
    """The modules of ``modules`` this file imports, lazily or not: ``from X import Y`` is X.Y when that is a
    module, else X. The file's own packages are left out: Python runs them before the file in any case."""
    out = set()
    for _, origin, names in import_statements(path, module):
        if origin is not None and not all(name in modules for name in names):
            names = [origin, *names]  # `from X import a` with a not a module takes a from X
        for name in names:
            parts = name.split(".")
            for k in range(len(parts), 0, -1):
                if ".".join(parts[:k]) in modules:
                    out.add(".".join(parts[:k]))
                    break
    ancestors = {".".join(module.split(".")[:k]) for k in range(1, module.count(".") + 1)}
    return out - ancestors - {module}


def file_graph(files: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    return {module: imported_modules(path, module, files) for module, path in files.items()}


def wing_of(module: str) -> str:
    """``assay`` itself is create_app's; ``assay.X...`` is wing X (a folder, a top-level module, the strategies)."""
    parts = module.split(".")
    return "create_app" if len(parts) == 1 else parts[1]


def wing_graph(files: dict[str, set[str]]) -> dict[str, dict[str, list[str]]]:
    """wing -> {wing it imports: ["file -> file", ...]}."""
    out: dict[str, dict[str, list[str]]] = {}
    for module, imported in files.items():
        arrows = out.setdefault(wing_of(module), {})
        for other in sorted(imported):
            if wing_of(other) != wing_of(module):
                arrows.setdefault(wing_of(other), []).append(f"{module} -> {other}")
    return out


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
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
    return sorted(found)


def wrong_arrows(wings: dict[str, dict[str, list[str]]], tiers=TIERS) -> list[str]:
    """Every arrow to a wing of the same row or a row above, and every wing no row holds."""
    row = {wing: n for n, names in enumerate(tiers) for wing in names}
    wrong = [f"{wing}: a wing that TIERS does not place" for wing in sorted(set(wings) - set(row))]
    for wing, arrows in sorted(wings.items()):
        for other, why in sorted(arrows.items()):
            if wing in row and other in row and row[other] <= row[wing]:
                where = "the same row as" if row[other] == row[wing] else "above"
                wrong.append(f"{wing} -> {other} ({other} is {where} {wing}): " + "; ".join(why))
    return wrong


FILES = module_files(PACKAGES)
GRAPH = file_graph(FILES)
WINGS = wing_graph(GRAPH)


# -- the checks check themselves -----------------------------------------------------------------------------

def test_the_resolver_handles_relative_imports():
    names = {name for _, name in imported_names(FILES["assay.store"], "assay.store")}
    assert "assay.store.db" in names
    names = {name for _, name in imported_names(FILES["assay.web.api.annotate"], "assay.web.api.annotate")}
    assert "assay.web.api.base" in names


def test_the_cycle_finder_finds_a_loop():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


PLANTED = {
    "__init__.py": "",
    "store/__init__.py": "",
    "store/rows.py": "def fetch():\n    from assay.web import views  # lazy, and still an arrow\n    return views\n",
    "domain/__init__.py": "",
    "domain/rules.py": "from ..store import rows\n",
    "web/__init__.py": "",
    "web/views.py": "from assay.store import rows\nfrom assay.domain import rules\n",
}


def test_the_checks_find_a_planted_cycle_and_an_upward_arrow(tmp_path):
    for name, text in PLANTED.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    files = file_graph(module_files({"assay": tmp_path}))
    assert files["assay.web.views"] == {"assay.store.rows", "assay.domain.rules"}
    assert import_cycles(files) == [["assay.domain.rules", "assay.store.rows", "assay.web.views"]]
    wings = wing_graph(files)
    assert import_cycles(wings) == [["domain", "store", "web"]]
    assert wrong_arrows(wings) == ["store -> web (web is above store): assay.store.rows -> assay.web.views"]
    assert wrong_arrows(wings, (("create_app",), ("domain",), ("store", "web"))) == [
        "store -> web (web is the same row as store): assay.store.rows -> assay.web.views",
        "web -> domain (domain is above web): assay.web.views -> assay.domain.rules",
        "web -> store (store is the same row as web): assay.web.views -> assay.store.rows"]
    assert wrong_arrows({"elsewhere": {}}) == ["elsewhere: a wing that TIERS does not place"]


def test_the_graph_is_the_whole_package():
    assert {"assay", "assay.cli", "assay.strategies.registry", "assay.web.api.annotate"} <= set(FILES)
    assert len(FILES) > 100
    assert {"web", "domain", "learning", "store", "strategies", "cli", "create_app"} <= set(WINGS)
    assert "strategies" in WINGS["learning"] and "store" in WINGS["domain"] and "domain" in WINGS["web"]


# -- the package ---------------------------------------------------------------------------------------------

def test_no_two_files_import_each_other_even_lazily():
    assert import_cycles(GRAPH) == []


def test_no_two_wings_import_each_other():
    assert import_cycles(WINGS) == []


def test_every_wing_imports_only_the_wings_below_it():
    assert wrong_arrows(WINGS) == []


def test_only_the_cli_takes_names_from_the_package_itself():
    """The package's ``__init__`` (create_app) is every module's parent, so the graph leaves it out; a module
    taking a name from it (``from assay import create_app``) would reach the top from below."""
    wrong = []
    for module, path in FILES.items():
        if wing_of(module) in ("create_app", "cli"):
            continue
        for line, name in imported_names(path, module):
            origin, _, taken = name.rpartition(".")
            if origin == "assay" and name not in FILES:
                wrong.append(f"{module} line {line}: {taken}")
    assert wrong == []


@pytest.mark.parametrize("module", sorted(FILES), ids=str)
def test_only_store_talks_to_the_database(module):
    if wing_of(module) == "store":
        return
    wrong = [f"line {line}: {name}" for line, name in imported_names(FILES[module], module)
             if name.split(".")[0] in DATABASE_DRIVERS]
    assert not wrong, f"{module} talks to the database; only store/ may:\n" + "\n".join(wrong)


def test_architecture_md_draws_the_same_rows():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    block = re.search(r"## Who imports whom\n.*?```\n(.*?)```", text, re.S)
    assert block, "ARCHITECTURE.md has no drawing under '## Who imports whom'"
    rows = [line.split("  ")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    drawn = tuple(tuple(name.strip() for name in row.split(",")) for row in rows)
    assert drawn == TIERS
