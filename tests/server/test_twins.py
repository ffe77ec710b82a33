"""Exact duplicates (twins, issue 29.5): detected at import, served one at a time, and a label on one is a
label on all, recorded as ``twin of item N``."""
from __future__ import annotations

import json

from tests.data import load_sms

TEXTS = ["Free ringtone! Reply now", "see you at 6", "Free ringtone! Reply now", "ok thanks",
         "Free ringtone! Reply now", "call me later"]


def _as(name):
    return {"X-Assay-Annotator": name}


def _project(client, make_project, texts=TEXTS, **fields):
    pid = make_project(**fields)
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": f"t{i}", "text": t} for i, t in enumerate(texts)])
    assert r.status_code == 200, r.json
    return pid, r.json


def _ids(client, pid):
    """{external id: item id}"""
    rows = client.get(f"/api/projects/{pid}/items?per_page=100").json
    return {r["external_id"]: r["id"] for r in rows["items"]}


def _pull(client, pid, who="ana", n=10):
    return client.get(f"/api/projects/{pid}/queue?n={n}", headers=_as(who)).json


def _answer(client, pid, item_id, label="spam", who="ana", **extra):
    body = {"item_id": item_id, **({"label": label} if label is not None else {}), **extra}
    return client.post(f"/api/projects/{pid}/annotations", json=body, headers=_as(who))


def _export(client, pid, provenance=True):
    text = client.get(f"/api/projects/{pid}/export?format=jsonl{'&provenance=1' if provenance else ''}").data
    return {row["id"]: row for row in map(json.loads, text.decode().splitlines())}


def _stats(client, pid):
    return client.get(f"/api/projects/{pid}/stats").json


def test_import_reports_the_duplicates_and_a_pull_serves_one_of_them(client, make_project):
    pid, result = _project(client, make_project)
    assert result == {"imported": 6, "skipped": 0}
    served = _pull(client, pid)
    texts = [i["data"]["text"] for i in served]
    assert len(texts) == len(set(texts)) == 4  # the three copies of the ringtone text: one of them
    # Nobody else gets a twin of an item out on a lease either: all the rest is reserved.
    assert _pull(client, pid, "bob") == []
    assert _stats(client, pid)["unlabeled"] == 6  # nothing labeled yet: the counts say so


def test_a_label_goes_to_the_twins_and_export_says_whence(client, make_project):
    pid, _ = _project(client, make_project)
    ids = _ids(client, pid)
    ringtone = next(i for i in _pull(client, pid) if i["data"]["text"] == TEXTS[0])["id"]
    assert _answer(client, pid, ringtone).status_code == 201
    stats = _stats(client, pid)
    assert stats["labeled"] == 3 and stats["unlabeled"] == 3 and stats["label_counts"] == {"spam": 3}
    rows = _export(client, pid)
    twins = [k for k in ("t0", "t2", "t4") if ids[k] != ringtone]
    own = next(k for k in ("t0", "t2", "t4") if ids[k] == ringtone)
    assert set(rows) == {"t0", "t2", "t4"}
    assert rows[own]["answers"][0]["source"] == "annotator"
    for key in twins:
        assert rows[key]["label"] == "spam" and rows[key]["annotator"] == "ana"
        assert rows[key]["answers"][0]["source"] == f"twin of item {ringtone}"
        assert rows[key]["strategy"] == f"twin of item {ringtone}"  # never served: labeled as a twin
    csv_text = client.get(f"/api/projects/{pid}/export?format=csv&provenance=1").data.decode()
    assert csv_text.count(f"twin of item {ringtone}") >= 2
    # What is left is the other three, which ana holds; the twins are never served.
    rest = _pull(client, pid, "ana")
    assert sorted(i["data"]["text"] for i in rest) == sorted(TEXTS[i] for i in (1, 3, 5))
    for item in rest:
        _answer(client, pid, item["id"], "ham", "ana")
    assert _pull(client, pid, "cy") == [] and _stats(client, pid)["unlabeled"] == 0


def test_relabel_skip_and_undo_carry_over_to_the_twins(client, make_project):
    pid, _ = _project(client, make_project)
    ringtone = next(i for i in _pull(client, pid) if i["data"]["text"] == TEXTS[0])["id"]
    _answer(client, pid, ringtone, "spam")
    _answer(client, pid, ringtone, "ham")  # a relabel: the twins follow
    rows = _export(client, pid, provenance=False)
    assert [rows[k]["label"] for k in ("t0", "t2", "t4")] == ["ham"] * 3
    # An undo takes the copies back: the twins return to the pool, and one of them is served again.
    assert client.delete(f"/api/projects/{pid}/annotations/{ringtone}", headers=_as("ana")).status_code == 200
    assert _stats(client, pid)["labeled"] == 0 and _export(client, pid) == {}
    again = [i for i in _pull(client, pid, "ana", 20) if i["data"]["text"] == TEXTS[0]]
    assert len(again) == 1  # one of the three, whichever
    # A skip labels nobody.
    assert _answer(client, pid, again[0]["id"], None, skip=True).status_code == 201
    stats = _stats(client, pid)
    assert stats["labeled"] == 0 and stats["skipped"] == 1 and stats["unlabeled"] == 5


def test_a_twin_with_its_own_label_keeps_it_and_deleting_the_labeled_one_keeps_the_copies(client, make_project):
    pid, _ = _project(client, make_project)
    ids = _ids(client, pid)
    held = next(i for i in _pull(client, pid, "ana") if i["data"]["text"] == TEXTS[0])["id"]
    other, last = [ids[k] for k in ("t0", "t2", "t4") if ids[k] != held][:2]
    # bob labels a twin directly while ana holds another: the third gets bob's copy, ana's stays hers.
    assert _answer(client, pid, other, "ham", "bob").status_code == 201
    assert _answer(client, pid, held, "spam", "ana").status_code == 201
    by_item = {row["item_id"]: row for row in _export(client, pid).values()}
    assert by_item[held]["label"] == "spam" and by_item[held]["answers"][0]["source"] == "annotator"
    assert by_item[other]["label"] == "ham" and len(by_item[other]["answers"]) == 1
    assert by_item[last]["label"] == "ham" and by_item[last]["answers"][0]["source"] == f"twin of item {other}"
    # Deleting the item whose label was copied keeps the copies: the text is still there, labeled.
    r = client.post(f"/api/projects/{pid}/items/delete", json={"ids": [other], "with_labels": True})
    assert r.status_code == 200, r.json
    by_item = {row["item_id"]: row for row in _export(client, pid).values()}
    assert by_item[last]["label"] == "ham" and by_item[last]["answers"][0]["source"] == f"twin of item {other}"


def test_the_command_line_import_counts_the_duplicates(app, make_project):
    from assay import store
    from assay.domain import ingest

    pid = make_project("cli-twins")
    db = app.extensions["assay.db"]
    project = store.get_project(db, pid)
    result = ingest.import_items(db, project, [{"text": t} for t in TEXTS])
    assert result.duplicates == 2 and "2 exact duplicates of other items" in result.summary()
    assert ingest.import_items(db, project, [{"text": TEXTS[1]}]).duplicates == 1  # a twin of an earlier import


def test_sms_twins_are_never_in_one_pull(app, client, make_project):
    """The SMS texts hold 22 exact duplicates among the first 1000: a pull of 100 never holds two copies."""
    pid = make_project("sms-twins")
    rows = load_sms(1000)
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": str(i), "text": r["text"]} for i, r in enumerate(rows)])
    assert r.json["imported"] == 1000
    from assay import store
    assert store.duplicate_count(app.extensions["assay.db"], pid) == 22
    seen = []
    for who in ("ana", "bob", "cy"):
        seen += [i["data"]["text"] for i in _pull(client, pid, who, 100)]
    assert len(seen) == 300 and len(set(seen)) == 300


def test_the_migration_hashes_the_items_already_there(tmp_path):
    """A database from before twins gets every item's hash (and so its twins) when it migrates."""
    import sqlite3

    from assay import store
    from assay.store.db import Database

    path = str(tmp_path / "old.sqlite")
    db = Database(path)
    db.migrate()
    pid = store.create_project(db, {"name": "old", "labels": ["a", "b"]})
    store.insert_items(db, pid, [(None, {"text": t}, None) for t in ("x", "x", "é", "y")])
    conn = sqlite3.connect(path)  # back to the schema before 0015
    conn.execute("DROP INDEX items_content")
    conn.execute("ALTER TABLE items DROP COLUMN content_hash")
    conn.execute("DELETE FROM migrations WHERE name = '0015_content_hash'")
    conn.commit()
    conn.close()
    again = Database(path)
    assert again.migrate() == ["0015_content_hash"]
    assert store.twin_ids(again, pid, 1) == [2] and store.duplicate_count(again, pid) == 1
    assert store.content_hashes(again, [3])[3] == store.content_hash({"text": "é"})


def test_imported_twins_of_labeled_items_arrive_labeled(client, make_project):
    """A seed label reaches its item's unlabeled copies in the same file, and a later import's copy of a labeled
    text arrives with that label: neither is served to be labeled again."""
    pid = make_project("seeded twins")
    rows = [{"id": "a", "text": "win a prize"}, {"id": "b", "text": "win a prize", "label": "spam"},
            {"id": "c", "text": "lunch?"}]
    assert client.post(f"/api/projects/{pid}/items?label_column=label", json=rows).json == {"imported": 3,
                                                                                            "skipped": 0}
    ids = _ids(client, pid)
    out = _export(client, pid)
    assert out["a"]["label"] == "spam" and out["a"]["annotator"] == "import"
    assert out["a"]["answers"][0]["source"] == f"twin of item {ids['b']}"
    assert [i["data"]["text"] for i in _pull(client, pid)] == ["lunch?"]
    # ana labels "lunch?"; a later file repeats it: the copy arrives labeled, as ana's, from her item.
    assert _answer(client, pid, ids["c"], "ham").status_code == 201
    client.post(f"/api/projects/{pid}/items", json=[{"id": "d", "text": "lunch?"}, {"id": "e", "text": "new"}])
    out = _export(client, pid)
    assert out["d"]["label"] == "ham" and out["d"]["annotator"] == "ana"
    assert out["d"]["answers"][0]["source"] == f"twin of item {ids['c']}"
    stats = _stats(client, pid)
    assert stats["labeled"] == 4 and stats["unlabeled"] == 1
