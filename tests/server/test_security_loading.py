"""Loading code is the operator's decision: over HTTP only registered models and featurizers load (issue 9.1)."""
from __future__ import annotations

import sys

import pytest

CANARY = "tests.import_canary"


@pytest.fixture(autouse=True)
def _forget_canary():
    sys.modules.pop(CANARY, None)
    yield
    sys.modules.pop(CANARY, None)


def _pwn_body(tmp_path, **fields):
    return {"name": "p", "labels": ["a", "b"], "model": "os:system",
            "model_params": {"command": f"touch {tmp_path / 'pwned'}"}, **fields}


def test_create_with_a_shell_command_as_model_runs_nothing(client, tmp_path):
    r = client.post("/api/projects", json=_pwn_body(tmp_path))
    assert r.status_code == 400
    assert "ASSAY_MODELS" in r.json["error"] and "--allow-model" in r.json["error"]
    assert not (tmp_path / "pwned").exists()
    assert client.get("/api/projects").json == []


def test_patch_to_a_shell_command_as_model_runs_nothing(client, make_project, tmp_path):
    pid = make_project()
    r = client.patch(f"/api/projects/{pid}", json={"model": "os:system",
                                                    "model_params": {"command": f"touch {tmp_path / 'pwned'}"}})
    assert r.status_code == 400
    assert not (tmp_path / "pwned").exists()
    assert client.get(f"/api/projects/{pid}").json["model"] == "logreg"


@pytest.mark.parametrize("field, spec", [("model", f"{CANARY}:model"), ("featurizer", f"{CANARY}:featurizer")])
def test_an_unregistered_import_path_is_not_even_imported(client, make_project, field, spec):
    r = client.post("/api/projects", json={"name": "p", "labels": ["a", "b"], field: spec})
    assert r.status_code == 400 and "not registered" in r.json["error"]
    pid = make_project("q")
    r = client.patch(f"/api/projects/{pid}", json={field: spec})
    assert r.status_code == 400
    assert CANARY not in sys.modules


@pytest.mark.parametrize("setting, field, spec", [("MODELS", "model", f"{CANARY}:model"),
                                                  ("FEATURIZERS", "featurizer", f"{CANARY}:featurizer")])
def test_a_registered_import_path_works_over_http(app, client, setting, field, spec):
    app.config[setting] = f"other.mod:thing, {spec}"
    r = client.post("/api/projects", json={"name": "p", "labels": ["a", "b"], "strategy": "margin", field: spec})
    assert r.status_code == 201, r.json
    assert client.get(f"/api/projects/{r.json['id']}").json[field] == spec


def test_changing_params_of_a_command_line_model_needs_it_registered(app, client, runner):
    out = runner.invoke(args=["create-project", "cli", "--labels", "a,b", "--strategy", "margin",
                              "--model", f"{CANARY}:model"])
    assert out.exit_code == 0, out.output
    pid = int(out.output.strip())
    assert CANARY in sys.modules  # the operator may name any import path
    r = client.patch(f"/api/projects/{pid}", json={"model_params": {"C": 0.5}})
    assert r.status_code == 400 and "not registered" in r.json["error"]
    # Settings that do not call the factory with new parameters stay open to the owner.
    assert client.patch(f"/api/projects/{pid}", json={"batch_size": 5}).status_code == 200


def test_serve_allow_model_registers_the_path(app):
    from assay.cli import allow

    app.config["MODELS"] = "a.b:c"
    allow(app, (f"{CANARY}:model",), ())
    assert app.config["MODELS"] == ["a.b:c", f"{CANARY}:model"]
    client = app.test_client()
    r = client.post("/api/projects", json={"name": "p", "labels": ["a", "b"], "strategy": "margin",
                                           "model": f"{CANARY}:model"})
    assert r.status_code == 201, r.json


def test_built_ins_and_entry_point_names_need_no_registration(client):
    r = client.post("/api/projects", json={"name": "p", "labels": ["a", "b"], "model": "ensemble",
                                           "strategy": "margin", "featurizer": "tfidf"})
    assert r.status_code == 201, r.json
    r = client.post("/api/projects", json={"name": "q", "labels": ["a", "b"], "model": "no_such_entry_point"})
    assert r.status_code == 400 and "assay.models" in r.json["error"]
