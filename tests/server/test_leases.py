"""Leases hold on answers too: an item in one annotator's queue is not answered by another (issue 9.13)."""
from __future__ import annotations


def _as(name):
    return {"X-Assay-Annotator": name}


def _project(client, make_project, n=4, **fields):
    pid = make_project(**fields)
    client.post(f"/api/projects/{pid}/items", json=[{"id": str(i), "text": f"text {i}"} for i in range(n)])
    return pid


def _answer(client, pid, who, item_id, label="ham"):
    return client.post(f"/api/projects/{pid}/annotations", json={"item_id": item_id, "label": label}, headers=_as(who))


def test_an_item_leased_to_someone_else_is_refused(client, make_project):
    pid = _project(client, make_project)
    item = client.get(f"/api/projects/{pid}/queue?n=1", headers=_as("ana")).json[0]["id"]
    r = _answer(client, pid, "bob", item, "spam")
    assert r.status_code == 409 and "reserved for another annotator" in r.json["error"]
    # The lease holder's answer goes through, and bob's left no trace.
    assert _answer(client, pid, "ana", item).status_code == 201
    rows = client.get(f"/api/projects/{pid}/export?annotations=all").data.decode().splitlines()
    assert len(rows) == 1 and '"ana"' in rows[0]


def test_unleased_items_and_own_items_stay_answerable(client, make_project):
    pid = _project(client, make_project)
    pulled = {i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=2", headers=_as("ana")).json}
    free = next(i for i in range(1, 5) if i not in pulled)
    assert _answer(client, pid, "bob", free).status_code == 201
    mine = sorted(pulled)[0]
    assert _answer(client, pid, "ana", mine).status_code == 201
    assert _answer(client, pid, "ana", mine, "spam").status_code == 201  # changing one's own answer


def test_with_overlap_the_free_places_are_shared(client, make_project):
    pid = _project(client, make_project, n=1, overlap=2)
    item = client.get(f"/api/projects/{pid}/queue?n=1", headers=_as("ana")).json[0]["id"]
    # One place is ana's (leased); the second is still free for anyone.
    assert _answer(client, pid, "bob", item).status_code == 201
    r = _answer(client, pid, "cy", item)
    assert r.status_code == 409
    assert _answer(client, pid, "ana", item).status_code == 201


def test_an_expired_lease_no_longer_blocks(app, client, make_project):
    app.config["LEASE_SECONDS"] = -1.0  # leases taken now are already over
    pid = _project(client, make_project)
    item = client.get(f"/api/projects/{pid}/queue?n=1", headers=_as("ana")).json[0]["id"]
    assert _answer(client, pid, "bob", item).status_code == 201
