"""Second security pass (issue 26): settings read as meant, secrets kept out of messages, private files, login
backoff. Each test failed before its fix."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from assay import close_app, create_app


def _env(tmp_path, **settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_") or k == "ASSAY_EMBEDDING_CACHE"}
    env.update(ASSAY_INSTANCE_PATH=str(tmp_path / "instance"), **{f"ASSAY_{k}": v for k, v in settings.items()})
    return env


def _assay(tmp_path, *args, **settings) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay.cli", *args], env=_env(tmp_path, **settings),
                          capture_output=True, text=True, timeout=120)


# -- ASSAY_AUTH and other yes/no settings ----------------------------------------------------------------

@pytest.mark.parametrize("value, on", [("no", False), ("off", False), ("false", False), ("False", False),
                                       ("0", False), ("", False), ("yes", True), ("on", True), ("true", True),
                                       ("TRUE", True), ("1", True)])
def test_auth_takes_the_usual_yes_no_spellings(tmp_path, monkeypatch, value, on):
    for key, val in _env(tmp_path, AUTH=value).items():
        monkeypatch.setenv(key, val)
    app = create_app()
    try:
        assert app.config["AUTH"] is on
    finally:
        close_app(app)


@pytest.mark.parametrize("setting", ["AUTH", "WEBHOOK_ANY_HOST"])
def test_anything_else_stops_the_start_with_one_line_saying_what_to_write(tmp_path, setting):
    done = _assay(tmp_path, "init-db", **{setting: "maybe"})
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"ASSAY_{setting}='maybe'" in lines[0] and "true or false" in lines[0], done.stderr


# -- secrets of ASSAY_DATABASE stay out of every message ------------------------------------------------------

SECRET_URL = ("postgresql://assay:s3cret-user-part@127.0.0.1:1/assay?password=s3cret-query&sslmode=disable"
              "&pass%77ord=s3cret-escaped&sslpassword=s3cret-key")


@pytest.mark.parametrize("command", [["init-db"], ["serve", "--port", "1"], ["worker", "--once"]])
@pytest.mark.parametrize("url", [SECRET_URL, SECRET_URL.replace("s3cret-query", "s3cret-%zz-malformed")])
def test_no_command_prints_a_secret_of_the_database_url(tmp_path, command, url):
    pytest.importorskip("psycopg")
    done = _assay(tmp_path, *command, DATABASE=url, WORKERS="external")
    out = done.stdout + done.stderr
    assert done.returncode != 0 and "127.0.0.1:1" in out, out  # it says which server it could not reach
    assert "s3cret" not in out, out


def test_redacted_hides_every_password_a_libpq_url_carries():
    from assay.store.postgres import redacted

    shown = redacted(SECRET_URL)
    assert "s3cret" not in shown and shown.startswith("postgresql://assay:***@127.0.0.1:1/assay?")
    assert "sslmode=disable" in shown
    assert redacted("postgresql://h/db?password") == "postgresql://h/db?password=***"
    assert "s3cret" not in redacted(SECRET_URL.replace("pass%77ord", "Pass%57ord"))
    assert redacted(str(tmp := "/srv/assay#1/assay.sqlite")) == tmp  # a SQLite path stays as it is


# -- the database and the instance folder are private --------------------------------------------------------

def test_a_new_database_and_instance_folder_are_private_whatever_the_umask(tmp_path, monkeypatch):
    import stat

    from assay import store

    instance, data = tmp_path / "instance", tmp_path / "data" / "sub"
    monkeypatch.setenv("ASSAY_INSTANCE_PATH", str(instance))
    old = os.umask(0o022)
    try:
        app = create_app({"TESTING": True, "DATABASE": str(data / "assay.sqlite")})
        try:
            store.create_user(app.extensions["assay.db"], "alice", None)  # a write: the -wal and -shm exist
            mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
            assert mode(instance) == 0o700 and mode(data) == 0o700
            assert mode(instance / "secret_key") == 0o600
            for name in ("assay.sqlite", "assay.sqlite-wal", "assay.sqlite-shm"):
                assert mode(data / name) == 0o600, (name, oct(mode(data / name)))
        finally:
            close_app(app)
    finally:
        os.umask(old)
