"""Shared fixtures: the real data sets, and a Flask app on a temporary database (flaskr style)."""
from __future__ import annotations

import pytest

from tests.data import load_sms


@pytest.fixture
def sms():
    return load_sms


@pytest.fixture
def app(tmp_path):
    from server import create_app

    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "SEED": 0,
                      "RETRAIN_TIMEOUT": 120.0})
    yield app
    app.extensions["assay.retrain"].shutdown()
    app.extensions["assay.db"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_project(client):
    def make(name="spam", labels=("ham", "spam"), **fields):
        r = client.post("/api/projects", json={"name": name, "labels": list(labels), **fields})
        assert r.status_code == 201, r.json
        return r.json["id"]

    return make
