"""One import name: the design card's folders install as the package ``assay`` and nothing else."""
from __future__ import annotations

import ast
import pathlib
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
OLD_NAMES = ("server", "strategies")


def _package_folders():
    for prefix, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            yield prefix + "".join("." + part for part in rel.parts)


def test_every_package_folder_is_listed():
    assert sorted(set(_package_folders()) - {"assay.templates"}) == sorted(
        set(SETUPTOOLS["packages"]) - {"assay.templates"})


def _python_files():
    for folder in ("server", "strategies", "tests", "benchmarks", "examples"):
        yield from sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("path", list(_python_files()), ids=lambda p: str(p.relative_to(ROOT)))
def test_nothing_imports_the_folder_names(path):
    """``server`` and ``strategies`` are folders, not import names: code importing them would work only from
    the checkout, and would load a second copy of a module (two StrategyInputError classes, two registries)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in OLD_NAMES, f"{path.name}:{node.lineno} imports {name}; use assay.…"


@pytest.mark.slow
def test_the_wheel_adds_one_import_name(tmp_path):
    """A built wheel holds ``assay`` (with its strategies, templates, static files and demo data) and its
    metadata, and no other top-level name."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel, = tmp_path.glob("assay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {"assay", wheel.name.split("-")[0] + "-" +
                                                      wheel.name.split("-")[1] + ".dist-info"}
    for expected in ("assay/strategies/bald.py", "assay/templates/annotate.html", "assay/web/static/annotate.js",
                     "assay/demo/sms_spam.tsv", "assay/web/api/openapi.py", "assay/cli.py"):
        assert expected in names, expected
    # Installed (unpacked in front of the path), it finds its templates and static files inside the package.
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import assay\n"
            "assert assay.__file__.startswith(sys.argv[1]), assay.__file__\n"
            "app = assay.create_app({'TESTING': True, 'DATABASE': sys.argv[2]})\n"
            "client = app.test_client()\n"
            "for url in ('/', '/static/annotate.js', '/static/assay.css'):\n"
            "    assert client.get(url).status_code == 200, url\n")
    subprocess.run([sys.executable, "-c", code, str(unpacked), str(tmp_path / "assay.sqlite")], check=True,
                   cwd=tmp_path)
