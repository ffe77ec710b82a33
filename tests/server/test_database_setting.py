"""ASSAY_DATABASE names a SQLite file or a PostgreSQL database; a URL of any other engine is refused, never
turned into a file in a folder named after the URL's scheme."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assay import create_app, store
from assay.errors import ConfigurationError
from assay.store.db import Database, database_path, database_setting
from assay.store.postgres import PostgresDatabase, redacted


@pytest.mark.parametrize("setting, path", [
    ("/srv/assay/assay.sqlite", "/srv/assay/assay.sqlite"),
    ("relative/assay.sqlite", "relative/assay.sqlite"),
    ("sqlite:///relative/assay.sqlite", "relative/assay.sqlite"),
    ("sqlite:////srv/assay/assay.sqlite", "/srv/assay/assay.sqlite"),
])
def test_paths_and_sqlite_urls_name_a_file(setting, path):
    assert database_path(setting) == path
    assert database_setting(setting) == path
    assert type(store.connect(setting)) is Database


@pytest.mark.parametrize("setting", [
    "postgresql://assay@db.internal/assay",
    "postgres://assay@db.internal:5433/assay",
    "postgresql+psycopg://assay:secret@db.internal/assay",
])
def test_postgresql_urls_name_a_postgresql_database(setting):
    assert database_setting(setting) == setting
    handle = store.connect(setting)  # connects on first use, not here
    assert type(handle) is PostgresDatabase and handle.path == setting
    with pytest.raises(ConfigurationError, match="not a SQLite file"):
        database_path(setting)


def test_a_password_never_reaches_a_message():
    assert redacted("postgresql://assay:s3cret@db.internal:5432/assay") == \
        "postgresql://assay:***@db.internal:5432/assay"
    assert redacted("postgresql://assay@db.internal/assay") == "postgresql://assay@db.internal/assay"


@pytest.mark.parametrize("setting, says, what_to_set", [
    ("mysql://root@localhost/assay", "the engine 'mysql'", "postgresql://user@host:port/database"),
    ("sqlite://", "names no file", "sqlite:///relative/path.sqlite"),
    ("postgresql://assay@db.internal/", "names no PostgreSQL database", "postgresql://user@host:port/database"),
])
def test_other_urls_are_refused_with_what_to_set(setting, says, what_to_set):
    with pytest.raises(ConfigurationError, match=says) as caught:
        database_setting(setting)
    assert what_to_set in str(caught.value)


def test_the_app_refuses_an_unknown_engine_and_makes_no_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError):
        create_app({"TESTING": True, "DATABASE": "mysql://assay@localhost/assay"})
    assert os.listdir(tmp_path) == []


def _port_nobody_listens_on() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again before anyone connects


def test_an_unreachable_postgresql_is_one_line_with_what_to_check(tmp_path):
    url = f"postgresql://assay:hunter2@127.0.0.1:{_port_nobody_listens_on()}/assay"
    env = {**os.environ, "ASSAY_DATABASE": url, "ASSAY_INSTANCE_PATH": str(tmp_path / "instance")}
    out = subprocess.run([sys.executable, "-m", "assay.cli", "init-db"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Error: ASSAY_DATABASE names PostgreSQL at" in out.stderr and "cannot be reached" in out.stderr
    assert "Traceback" not in out.stderr and "hunter2" not in out.stderr
    assert not (tmp_path / "postgresql:").exists()


def test_the_command_line_refuses_an_unknown_engine_in_one_line(tmp_path):
    env = {**os.environ, "ASSAY_DATABASE": "mysql://root@localhost/assay",
           "ASSAY_INSTANCE_PATH": str(tmp_path / "instance")}
    out = subprocess.run([sys.executable, "-m", "assay.cli", "init-db"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Error: ASSAY_DATABASE names the engine 'mysql'" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "mysql:").exists()
