"""Deleting a project or some of its items: owner-only, confirmed, all or none, labels never dropped by accident."""
from __future__ import annotations

import os

from assay import store
from tests import sql


def _project_with_items(client, make_project, n=6, name="del"):
    pid = make_project(name)
    client.post(f"/api/projects/{pid}/items", json=[{"id": f"x{i}", "text": f"text {i}"} for i in range(n)])
    return pid


def _ids(client, pid, n=6):
    return sorted(i["id"] for i in client.get(f"/api/projects/{pid}/queue?n={n}").json)


def test_delete_project_needs_its_name_then_removes_everything(app, client, make_project):
    pid = _project_with_items(client, make_project)
    other = _project_with_items(client, make_project, name="keep")
    ids = _ids(client, pid)
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": ids[0], "label": "ham"})
    cache = os.path.join(app.config["CACHE_DIR"], f"project-{pid}")
    os.makedirs(cache, exist_ok=True)
    r = client.delete(f"/api/projects/{pid}")
    assert r.status_code == 400 and f"confirm={'del'}" in r.json["error"]
    assert client.delete(f"/api/projects/{pid}?confirm=keep").status_code == 400
    r = client.delete(f"/api/projects/{pid}?confirm=del")
    assert r.status_code == 200 and r.json == {"deleted": "del", "items": 6, "labeled": 1}
    assert client.get(f"/api/projects/{pid}").status_code == 404
    assert not os.path.exists(cache)
    conn = app.extensions["assay.db"].reader
    for table in ("items", "annotations", "queue", "leases", "model_versions"):
        assert conn.execute(f"SELECT count(*) FROM {table} WHERE project_id = ?", (pid,)).fetchone()[0] == 0
    assert client.get(f"/api/projects/{other}").json["items"] == 6
    # The name is free again.
    assert client.post("/api/projects", json={"name": "del", "labels": ["a", "b"]}).status_code == 201


def test_delete_items_is_all_or_none_and_spares_labels_unless_asked(app, client, make_project):
    pid = _project_with_items(client, make_project)
    ids = _ids(client, pid)
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": ids[0], "label": "ham"})
    r = client.post(f"/api/projects/{pid}/items/delete", json={"ids": [ids[1], 10**9]})
    assert r.status_code == 404 and "nothing was deleted" in r.json["error"]
    r = client.post(f"/api/projects/{pid}/items/delete", json={"ids": [ids[0], ids[1]]})
    assert r.status_code == 409 and "carry labels" in r.json["error"]
    assert client.get(f"/api/projects/{pid}").json["items"] == 6
    r = client.post(f"/api/projects/{pid}/items/delete", json={"ids": [ids[1], ids[2]]})
    assert r.status_code == 200 and r.json == {"deleted": 2, "labeled": 0}
    r = client.delete(f"/api/projects/{pid}/items/{ids[0]}")
    assert r.status_code == 409
    r = client.delete(f"/api/projects/{pid}/items/{ids[0]}?with_labels=true")
    assert r.status_code == 200 and r.json == {"deleted": 1, "labeled": 1}
    stats = client.get(f"/api/projects/{pid}/stats").json
    assert stats["labeled"] == 0 and stats["unlabeled"] == 3
    assert client.post(f"/api/projects/{pid}/items/delete", json={"ids": "1"}).status_code == 400


def test_an_item_of_another_project_is_not_deleted(client, make_project):
    pid = _project_with_items(client, make_project)
    other = _project_with_items(client, make_project, name="other")
    theirs = _ids(client, other)[0]
    assert client.delete(f"/api/projects/{pid}/items/{theirs}").status_code == 404
    assert client.get(f"/api/projects/{other}").json["items"] == 6


def test_only_owners_delete(app, client, make_project):
    from assay.web import auth

    pid = _project_with_items(client, make_project)
    app.config["AUTH"] = True
    db = app.extensions["assay.db"]
    uid = store.create_user(db, "ann", None)
    store.grant(db, uid, pid, "annotator")
    token = auth.new_token()
    store.add_token(db, uid, auth.hash_token(token), token[:12])
    headers = {"Authorization": f"Bearer {token}"}
    assert client.delete(f"/api/projects/{pid}?confirm=del", headers=headers).status_code == 403
    assert client.post(f"/api/projects/{pid}/items/delete", json={"ids": [1]}, headers=headers).status_code == 403


def test_cli_delete_project_and_items(runner, app):
    assert runner.invoke(args=["create-project", "c", "--labels", "a,b"]).exit_code == 0
    db = app.extensions["assay.db"]
    pid = store.get_project(db.reader, "c")["id"]
    store.insert_items(db, pid, [(str(i), {"text": f"t{i}"}, "a" if i == 0 else None) for i in range(4)])
    ids = [r[0] for r in db.reader.execute("SELECT id FROM items WHERE project_id = ? ORDER BY id", (pid,))]
    out = runner.invoke(args=["delete-items", "c", str(ids[0])])
    assert out.exit_code != 0 and "carry labels" in out.output
    out = runner.invoke(args=["delete-items", "c", str(ids[0]), str(ids[1]), "--with-labels"])
    assert out.exit_code == 0 and "deleted 2 items (1 of them labeled)" in out.output
    out = runner.invoke(args=["delete-project", "c"], input="wrong\n")
    assert out.exit_code != 0 and "nothing was deleted" in out.output
    out = runner.invoke(args=["delete-project", "c"], input="c\n")
    assert out.exit_code == 0 and "deleted project c: 2 items" in out.output
    assert runner.invoke(args=["delete-project", "c", "--yes"]).exit_code != 0


def test_a_retrain_finishing_after_its_items_went_keeps_the_rest(app, make_project, client):
    pid = _project_with_items(client, make_project)
    db = app.extensions["assay.db"]
    ids = _ids(client, pid)
    client.post(f"/api/projects/{pid}/items/delete", json={"ids": ids[:2]})
    rows = [{"item_id": i, "score": 1.0, "strategy": "margin"} for i in ids]
    store.replace_queue(db, pid, rows, None)
    assert sorted(r["item_id"] for r in sql.queue_rows(db, pid)) == ids[2:]
    client.delete(f"/api/projects/{pid}?confirm=del")
    assert store.replace_queue(db, pid, rows, {"status": "ok", "model": "logreg", "strategy": "margin",
                                               "n_labels": 0}) is None
