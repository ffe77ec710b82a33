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
