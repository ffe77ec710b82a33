"""ASSAY_DATABASE names a SQLite file; a URL of any engine Assay cannot use is refused, never turned into a
file in a folder named after the URL's scheme."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assay import create_app
from assay.errors import ConfigurationError
from assay.store.db import database_path


@pytest.mark.parametrize("setting, path", [
    ("/srv/assay/assay.sqlite", "/srv/assay/assay.sqlite"),
    ("relative/assay.sqlite", "relative/assay.sqlite"),
    ("sqlite:///relative/assay.sqlite", "relative/assay.sqlite"),
    ("sqlite:////srv/assay/assay.sqlite", "/srv/assay/assay.sqlite"),
])
def test_paths_and_sqlite_urls_name_a_file(setting, path):
    assert database_path(setting) == path


@pytest.mark.parametrize("setting, says", [
    ("postgresql://assay@db.internal/assay", "names PostgreSQL"),
    ("postgres://assay@db.internal/assay", "names PostgreSQL"),
    ("postgresql+psycopg://assay@db.internal/assay", "names PostgreSQL"),
    ("mysql://root@localhost/assay", "the engine 'mysql'"),
    ("sqlite://", "names no file"),
])
def test_other_urls_are_refused_with_what_to_set(setting, says):
    with pytest.raises(ConfigurationError, match=says) as caught:
        database_path(setting)
    assert "file path" in str(caught.value)


def test_the_app_refuses_to_start_and_makes_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        create_app({"TESTING": True, "DATABASE": "postgresql://assay@localhost/assay"})
    assert os.listdir(tmp_path) == []


def test_the_command_line_says_it_in_one_line(tmp_path):
    env = {**os.environ, "ASSAY_DATABASE": "postgresql://assay@localhost/assay",
           "ASSAY_INSTANCE_PATH": str(tmp_path / "instance")}
    out = subprocess.run([sys.executable, "-m", "assay.cli", "init-db"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Error: ASSAY_DATABASE names PostgreSQL" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "postgresql:").exists()
