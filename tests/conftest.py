"""Shared fixtures: the real data sets, and a Flask app on a temporary database (flaskr style)."""
from __future__ import annotations

import csv
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data")
SMS_PATH = os.path.join(REPO, "server", "demo", "sms_spam.tsv")


def load_sms(n: int | None = None) -> list[dict]:
    """The SMS Spam Collection shipped with the demo: [{"label", "text"}]."""
    with open(SMS_PATH, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        rows = [{"label": label, "text": text} for label, text in reader]
    return rows[:n] if n else rows


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
