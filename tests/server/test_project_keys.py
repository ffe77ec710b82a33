"""Which key picks which label on the annotate page, and the project setting `keys` that chooses them."""
from __future__ import annotations

import pytest

from assay.domain.projects import label_keys


@pytest.mark.parametrize("labels, keys", [
    (["ham", "spam"], ["1", "2"]),
    ([str(d) for d in range(10)], [str(d) for d in range(10)]),  # digits are their own keys
    (["a", "B", "c"], ["a", "B", "c"]),
    (["1", "2", "x"], ["1", "2", "x"]),
    (["s", "m", "l"], ["1", "2", "3"]),  # "s" skips: clothing sizes keep the number row
    (["a", "A"], ["1", "2"]),  # one key cannot tell them apart
    (["+", "-"], ["1", "2"]),  # only letters and digits count as single keys
    ([f"label {i}" for i in range(12)], [*"1234567890", None, None]),
])
def test_default_keys(labels, keys):
    assert label_keys({"labels": labels, "keys": None}) == keys


def test_a_project_s_own_keys_win():
    assert label_keys({"labels": ["ham", "spam"], "keys": ["j", "k"]}) == ["j", "k"]


def test_keys_are_set_shown_and_changed_through_the_api(client, make_project):
    pid = make_project("keyed", keys=["j", "k"])
    assert client.get(f"/api/projects/{pid}").json["keys"] == ["j", "k"]
    r = client.patch(f"/api/projects/{pid}", json={"keys": ["f", "g"]})
    assert r.status_code == 200 and r.json["keys"] == ["f", "g"]
    assert b'data-key="f"' in client.get(f"/projects/{pid}/annotate").data
    r = client.patch(f"/api/projects/{pid}", json={"keys": None})
    assert r.status_code == 200 and r.json["keys"] is None
    assert client.get(f"/api/projects/{pid}").json["keys"] is None
    assert client.get(f"/api/projects/{make_project('plain')}").json["keys"] is None


@pytest.mark.parametrize("keys, says", [
    (["j"], "one key per label"),
    (["j", "J"], "distinct"),
    (["j", "s"], "'s'"),
    (["j", "kk"], "single character"),
    (["j", " "], "single character"),
    ("jk", "list"),
])
def test_bad_keys_are_refused_with_what_to_do(client, keys, says):
    r = client.post("/api/projects", json={"name": "bad-keys", "labels": ["ham", "spam"], "keys": keys})
    assert r.status_code == 400
    assert says in r.json["error"]


def test_changing_labels_must_keep_one_key_each(client, make_project):
    pid = make_project("relabel", keys=["j", "k"])
    r = client.patch(f"/api/projects/{pid}", json={"labels": ["ham", "spam", "eggs"]})
    assert r.status_code == 400 and "keys" in r.json["error"]
    r = client.patch(f"/api/projects/{pid}", json={"labels": ["ham", "spam", "eggs"], "keys": ["j", "k", "l"]})
    assert r.status_code == 200 and r.json["keys"] == ["j", "k", "l"]


def test_the_migration_adds_the_column_to_an_existing_database(tmp_path):
    import sqlite3

    from assay import close_app, create_app, services
    from assay.store.migrations import MIGRATIONS

    assert "0006_project_keys" in [name for name, *_ in MIGRATIONS]
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "k.sqlite")})
    try:
        services.open_database(app)  # as every command does at its start
        conn = sqlite3.connect(tmp_path / "k.sqlite")
        assert "keys" in [row[1] for row in conn.execute("PRAGMA table_info(projects)")]
        assert conn.execute("SELECT 1 FROM migrations WHERE name = '0006_project_keys'").fetchone()
    finally:
        close_app(app)


def test_create_project_takes_keys_on_the_command_line(runner, client):
    out = runner.invoke(args=["create-project", "jk", "--labels", "left,right", "--keys", "j, k"])
    assert out.exit_code == 0, out.output
    assert client.get(f"/api/projects/{int(out.output)}").json["keys"] == ["j", "k"]
    out = runner.invoke(args=["create-project", "bad", "--labels", "left,right", "--keys", "j"])
    assert out.exit_code != 0 and "one key per label" in out.output
