"""ARCHITECTURE.md names real places: every file or folder it puts in backticks exists, and every wing of
the package appears in it."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEXT = (ROOT / "ARCHITECTURE.md").read_text()


def _candidates(path: str) -> list[pathlib.Path]:
    path = path.rstrip("/")
    return [ROOT / path, ROOT / "server" / path, ROOT / "server" / "web" / path, ROOT / "server" / "domain" / path,
            ROOT / "server" / "learning" / path, ROOT / "server" / "store" / path]


def test_named_paths_exist():
    named = set(re.findall(r"`([A-Za-z_./]+(?:\.py|/))", TEXT))
    assert len(named) > 20
    missing = [p for p in sorted(named) if not any(c.exists() for c in _candidates(p))]
    assert not missing, f"ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_wing_is_described():
    wings = sorted(p.name for p in (ROOT / "server").iterdir()
                   if p.is_dir() and (p / "__init__.py").exists())
    assert wings, "no wings found"
    for wing in wings:
        assert f"{wing}/" in TEXT, f"ARCHITECTURE.md does not describe server/{wing}/"
