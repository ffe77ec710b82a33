"""The model and feature layer stays pure: no Flask, no database, no server modules."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "server" / "models").glob("*.py")) + sorted((ROOT / "server" / "features").glob("*.py"))
FORBIDDEN = ("flask", "sqlite3", "sqlite_utils", "server", "strategies", "werkzeug")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_imports_only_libraries_strategies_and_siblings(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level > 1:
                pytest.fail(f"{path.name}:{node.lineno} reaches outside its package with a relative import")
            names = [node.module] if node.level == 0 and node.module else []
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name}:{node.lineno} imports {name}"
            if name.split(".")[0] == "assay":
                # Of Assay itself, only the strategies library: models and features stay usable without the server.
                assert name == "assay.strategies" or name.startswith("assay.strategies."), \
                    f"{path.name}:{node.lineno} imports {name}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_uses_only_the_public_strategies_interface(path):
    """Models may use assay.strategies' public helpers, never its private modules (``_checks``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("assay.strategies"):
            assert not any(part.startswith("_") for part in node.module.split(".")), \
                f"{path.name}:{node.lineno} imports the private {node.module}"
