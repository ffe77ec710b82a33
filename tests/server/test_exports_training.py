"""Exports training code reads directly (Parquet, a Hugging Face folder, Label Studio tasks), and the
provenance of every label: what was served, by which pick, with what probability (issue 14, part 2)."""
from __future__ import annotations

import io
import json
import tracemalloc

import pytest

from assay import store

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _as(name):
    return {"X-Assay-Annotator": name}


def _seeded(app, make_project, n=6, imported=True, **fields):
    """A project with ``n`` items, a third of them labeled by import (unless not ``imported``), and an
    imported field called ``label`` (which must never pass for the answer)."""
    pid = make_project(**fields)
    db = app.extensions["assay.db"]
    labels = store.get_project(db, pid)["labels"]
    multi = store.get_project(db, pid)["multi_label"]
    rows = []
    for i in range(n):
        label = None
        if imported and i % 3 == 0:
            label = [labels[i % len(labels)]] if multi else labels[i % len(labels)]
        rows.append((f"x{i}", {"text": f"message {i}", "label": "not the answer", "n": i}, label))
    store.insert_items(db, pid, rows)
    return pid


def _jsonl(client, pid, query=""):
    r = client.get(f"/api/projects/{pid}/export?format=jsonl{query}")
    assert r.status_code == 200, r.data
    return [json.loads(line) for line in r.data.decode().splitlines()]


def _label_all(client, pid, labels, who="local"):
    for item in client.get(f"/api/projects/{pid}/queue?n=50", headers=_as(who)).json:
        i = int(item["data"]["n"])
        client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": labels[i % 2]},
                    headers=_as(who))


def test_parquet_round_trips_the_labeled_set_over_http_and_the_cli(app, client, make_project, runner, tmp_path):
    pid = _seeded(app, make_project, n=9)
    _label_all(client, pid, ["ham", "spam"])
    expected = _jsonl(client, pid)
    assert len(expected) == 9
    r = client.get(f"/api/projects/{pid}/export?format=parquet")
    assert r.status_code == 200 and r.is_streamed and r.mimetype == "application/vnd.apache.parquet"
    assert ".parquet" in r.headers["Content-Disposition"]
    table = pq.read_table(io.BytesIO(r.data))
    assert table.schema.field("text").type == pa.string() and table.schema.field("n").type == pa.int64()
    # The imported field named "label" keeps its prefix: the answer is the column "label".
    assert table.column_names == ["id", "item_id", "text", "data.label", "n", "label", "annotator", "timestamp"]
    rows = table.to_pylist()
    assert [(r["id"], r["item_id"], r["label"], r["annotator"], r["timestamp"]) for r in rows] == \
           [(e["id"], e["item_id"], e["label"], e["annotator"], e["timestamp"]) for e in expected]
    assert [(r["text"], r["data.label"], r["n"]) for r in rows] == \
           [(e["data"]["text"], e["data"]["label"], e["data"]["n"]) for e in expected]
    assert json.loads(table.schema.metadata[b"assay.labels"]) == ["ham", "spam"]
    out = tmp_path / "labels.parquet"
    result = runner.invoke(args=["export", str(pid), "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote 9 rows to {out}" in result.output
    assert pq.read_table(out).equals(table)


def test_parquet_of_a_multi_label_project_has_a_list_of_labels(app, client, make_project):
    pid = _seeded(app, make_project, labels=("a", "b", "c"), multi_label=True)
    item = client.get(f"/api/projects/{pid}/queue?n=1").json[0]
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "labels": ["c", "a"]})
    table = pq.read_table(io.BytesIO(client.get(f"/api/projects/{pid}/export?format=parquet").data))
    assert table.schema.field("labels").type == pa.list_(pa.string())
    assert {r["item_id"]: r["labels"] for r in table.to_pylist()} == \
           {e["item_id"]: e["labels"] for e in _jsonl(client, pid)}
    assert ["a", "c"] in table.column("labels").to_pylist()


def test_hf_folder_opens_with_class_labels(app, client, make_project, runner, tmp_path):
    datasets = pytest.importorskip("datasets")
    pid = _seeded(app, make_project, n=9, labels=("spam", "ham"))  # ClassLabel follows the project's order
    _label_all(client, pid, ["ham", "spam"])
    expected = _jsonl(client, pid)
    folder = tmp_path / "hf"
    result = runner.invoke(args=["export", str(pid), "--format", "hf", "-o", str(folder)])
    assert result.exit_code == 0, result.output
    ds = datasets.load_from_disk(str(folder))
    assert isinstance(ds.features["label"], datasets.ClassLabel)
    assert ds.features["label"].names == ["spam", "ham"]
    assert len(ds) == len(expected) == 9
    columns = ds[:]
    assert [ds.features["label"].int2str(v) for v in columns["label"]] == [e["label"] for e in expected]
    assert columns["text"] == [e["data"]["text"] for e in expected]
    assert columns["id"] == [e["id"] for e in expected]
    # Written again into a folder that is not empty: refused, nothing overwritten.
    again = runner.invoke(args=["export", str(pid), "--format", "hf", "-o", str(folder)])
    assert again.exit_code != 0 and "not an empty folder" in again.output


def test_hf_folder_of_a_multi_label_project_has_a_sequence_of_class_labels(app, client, make_project, runner,
                                                                         tmp_path):
    datasets = pytest.importorskip("datasets")
    pid = _seeded(app, make_project, labels=("a", "b", "c"), multi_label=True)
    item = client.get(f"/api/projects/{pid}/queue?n=1").json[0]
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "labels": ["c", "a"]})
    folder = tmp_path / "hf"
    assert runner.invoke(args=["export", str(pid), "--format", "hf", "-o", str(folder)]).exit_code == 0
    ds = datasets.load_from_disk(str(folder))
    feature = ds.features["labels"]
    inner = getattr(feature, "feature", None)
    assert isinstance(inner, datasets.ClassLabel) and inner.names == ["a", "b", "c"]
    columns = ds[:]
    decoded = {i: [inner.int2str(v) for v in labels] for i, labels in zip(columns["item_id"], columns["labels"])}
    assert decoded == {e["item_id"]: e["labels"] for e in _jsonl(client, pid)}


def test_label_studio_tasks_follow_the_import_format(app, client, make_project, runner, tmp_path):
    pid = _seeded(app, make_project, n=6, overlap=2)
    for who in ("ann", "bob"):
        for item in client.get(f"/api/projects/{pid}/queue?n=50", headers=_as(who)).json:
            # They disagree on item x1: a majority of one each, the latest answer wins.
            label = "spam" if (who == "bob" and item["data"]["n"] == 1) else "ham"
            client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": label},
                        headers=_as(who))
    resolved = {e["item_id"]: e["label"] for e in _jsonl(client, pid)}
    r = client.get(f"/api/projects/{pid}/export?format=labelstudio")
    assert r.status_code == 200 and r.mimetype == "application/json" and r.is_streamed
    tasks = json.loads(r.data)
    assert isinstance(tasks, list) and len(tasks) == len(resolved) == 6
    for task in tasks:
        assert set(task) == {"data", "annotations", "meta"}
        assert task["data"]["text"].startswith("message ")
        truth = [a for a in task["annotations"] if a["ground_truth"]]
        assert len(truth) == 1
        for annotation in task["annotations"]:
            assert annotation["was_cancelled"] is False and isinstance(annotation["created_at"], str)
            (result,) = annotation["result"]
            assert result["from_name"] == "label" and result["to_name"] == "text" and result["type"] == "choices"
            assert set(result["value"]) == {"choices"} and isinstance(result["value"]["choices"], list)
        assert truth[0]["result"][0]["value"]["choices"] == [resolved[task["meta"]["assay_item_id"]]]
    by_item = {t["meta"]["assay_id"]: t for t in tasks}
    # Overlap: both answers travel, as two annotations.
    assert sorted(a["result"][0]["value"]["choices"][0] for a in by_item["x1"]["annotations"]) == ["ham", "spam"]
    assert sorted(by_item["x1"]["meta"]["annotators"]) == ["ann", "bob"]
    out = tmp_path / "tasks.json"
    result = runner.invoke(args=["export", str(pid), "--format", "labelstudio", "-o", str(out)])
    assert result.exit_code == 0 and "wrote 6 tasks" in result.output
    assert json.loads(out.read_text()) == tasks


def test_provenance_matches_what_was_served(app, client, make_project):
    """A queue with a model version behind it, pulled by two annotators (overlap 2), labeled, exported: each
    label's provenance is what the pull served it with, and what the queue said of its pick."""
    pid = _seeded(app, make_project, n=12, imported=False, overlap=2, retrain_every=1000)
    db = app.extensions["assay.db"]
    pool = [i for i in store.pool_item_ids(db, pid)]
    queue = [{"item_id": pool[0], "score": 0.9, "strategy": "margin", "selection_prob": 1.0},
             {"item_id": pool[1], "score": None, "strategy": "audit", "selection_prob": 0.125},
             {"item_id": pool[2], "score": 0.4, "strategy": "margin (beyond the batch)", "selection_prob": 1.0},
             {"item_id": pool[3], "score": 0.3, "strategy": "power_bald", "selection_prob": None}]
    for row in queue:
        row["prediction"] = {"label": "ham", "confidence": 0.6}
    # Ranked while featurizing went on: 8 of the pool's 12 items (assay.learning.featcache).
    number = store.replace_queue(db, pid, queue, {"status": "ok", "model": "logreg", "strategy": "margin",
                                                  "n_labels": 4, "pool_size": 12, "ranked": 8})
    served = {}
    for who in ("ann", "bob"):
        pulled = client.get(f"/api/projects/{pid}/queue?n=6", headers=_as(who)).json
        served[who] = {p["id"]: p for p in pulled}
        for p in pulled:
            assert client.post(f"/api/projects/{pid}/annotations", json={"item_id": p["id"], "label": "spam"},
                               headers=_as(who)).status_code == 201
    ann = served["ann"]
    # ann got the queue in rank order, then random fill; bob got the items ann started first (overlap).
    assert list(ann)[:4] == pool[:4]
    rows = {r["item_id"]: r for r in _jsonl(client, pid, "&provenance=1")}
    open_at_fill = 12 - 4  # nobody's answer yet, less the four the pull took from the queue
    for item_id, pick in ann.items():
        row = rows[item_id]
        assert row["strategy"] == pick["strategy"] and row["score"] == pick["score"]
        assert row["model_version"] == pick["model_version"]
        if item_id in pool[:4]:
            q = queue[pool.index(item_id)]
            assert (row["model_version"], row["model_labels"]) == (number, 4)
            assert (row["ranked_among"], row["pool_size"]) == (8, 12) == (pick["ranked_among"], pick["pool_size"])
            assert row["selection_prob"] == q["selection_prob"]
        else:
            assert row["strategy"] == "random" and row["model_version"] is None and row["ranked_among"] is None
            assert row["selection_prob"] == pytest.approx(2 / open_at_fill)
        assert row["labels_when_served"] == 0
        answers = {a["annotator"]: a for a in row["answers"]}
        assert set(answers) == {"ann", "bob"} and answers["ann"]["strategy"] == pick["strategy"]
        assert answers["ann"]["selection_prob"] == row["selection_prob"]
        assert answers["bob"]["label"] == "spam" and answers["bob"]["source"] == "annotator"
        # bob's serving is his own, made after ann had labeled six.
        assert answers["bob"]["labels_when_served"] == 6
        assert answers["bob"]["served_at"] >= answers["ann"]["served_at"]
        if item_id in pool[:4]:
            assert answers["bob"]["strategy"] == pick["strategy"]
        else:  # bob's fill: the items ann started, not a draw of its own
            assert answers["bob"]["strategy"] == "random" and answers["bob"]["selection_prob"] is None
    # The same provenance in Parquet, and as columns (answers as JSON) in CSV.
    table = pq.read_table(io.BytesIO(client.get(f"/api/projects/{pid}/export?format=parquet&provenance=1").data))
    assert {r["item_id"]: (r["strategy"], r["selection_prob"], r["model_version"]) for r in table.to_pylist()} == \
           {i: (r["strategy"], r["selection_prob"], r["model_version"]) for i, r in rows.items()}
    csv_head = client.get(f"/api/projects/{pid}/export?format=csv&provenance=1").data.decode().splitlines()[0]
    assert csv_head.endswith("strategy,score,model_version,model_labels,ranked_among,pool_size,selection_prob,"
                             "labels_when_served,served_at,answers,suggested,accepted")
    # Without asking, exports keep their columns.
    assert "strategy" not in _jsonl(client, pid)[0]


def test_an_imported_label_has_no_serving(app, client, make_project):
    """Never served: the provenance says so with nulls rather than invented values."""
    pid = _seeded(app, make_project, n=6)
    rows = _jsonl(client, pid, "&provenance=1")
    assert len(rows) == 2 and all(r["answers"][0]["source"] == "import" for r in rows)
    assert all(r["strategy"] is None and r["selection_prob"] is None and r["model_version"] is None
               and r["answers"][0]["annotator"] == "import" for r in rows)


def test_a_reload_keeps_the_pick_that_first_served_the_item(app, client, make_project):
    pid = _seeded(app, make_project, n=6, retrain_every=1000)
    db = app.extensions["assay.db"]
    pool = store.pool_item_ids(db, pid)
    store.replace_queue(db, pid, [{"item_id": pool[0], "score": 0.9, "strategy": "margin", "selection_prob": 1.0}],
                        {"status": "ok", "model": "logreg", "strategy": "margin", "n_labels": 2})
    first = client.get(f"/api/projects/{pid}/queue?n=1").json[0]
    # A retrain lands and ranks the same item again; the page reloads and gets its lease back.
    store.replace_queue(db, pid, [{"item_id": pool[0], "score": 0.1, "strategy": "audit", "selection_prob": 0.5}],
                        {"status": "ok", "model": "logreg", "strategy": "margin", "n_labels": 2})
    assert client.get(f"/api/projects/{pid}/queue?n=1").json[0]["id"] == first["id"]
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": first["id"], "label": "ham"})
    row = next(r for r in _jsonl(client, pid, "&provenance=1") if r["item_id"] == first["id"])
    assert (row["strategy"], row["score"], row["selection_prob"], row["model_version"]) == ("margin", 0.9, 1.0, 1)


def test_bad_format_names_are_refused_clearly(app, client, make_project, runner):
    pid = _seeded(app, make_project)
    r = client.get(f"/api/projects/{pid}/export?format=xlsx")
    assert r.status_code == 400
    assert "xlsx" in r.json["error"] and "parquet" in r.json["error"] and "labelstudio" in r.json["error"]
    r = client.get(f"/api/projects/{pid}/export?format=hf")
    assert r.status_code == 400 and "-o FOLDER" in r.json["error"]
    assert client.get(f"/api/projects/{pid}/export?provenance=maybe").status_code == 400
    assert client.get(f"/api/projects/{pid}/export?format=labelstudio&annotations=all").status_code == 400
    result = runner.invoke(args=["export", str(pid), "--format", "xlsx"])
    assert result.exit_code != 0 and "'xlsx' is not one of" in result.output and "parquet" in result.output
    result = runner.invoke(args=["export", str(pid), "--format", "hf"])
    assert result.exit_code != 0 and "-o FOLDER" in result.output


def _peaks(app, pid, fmt):
    """Peak Python heap (tracemalloc) and peak Arrow memory in use while ``fmt`` is written, in bytes."""
    from assay.domain import columnar, export

    db = app.extensions["assay.db"]
    project = store.get_project(db, pid)
    arrow_peak = [0]

    def watched(records):
        for n, rec in enumerate(records):
            if n % 500 == 0:
                arrow_peak[0] = max(arrow_peak[0], pa.total_allocated_bytes())
            yield rec

    tracemalloc.start()
    try:
        records = watched(export.iter_export(db, pid, provenance=True))
        if fmt == "parquet":
            for _ in columnar.stream_parquet(project, records, columnar.data_columns(db, pid), provenance=True):
                arrow_peak[0] = max(arrow_peak[0], pa.total_allocated_bytes())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, arrow_peak[0]


def test_parquet_export_memory_does_not_grow_with_the_item_count(app, make_project):
    """Streamed in record batches: four times the items, about the same peak (one batch, one SQL page)."""
    db = app.extensions["assay.db"]
    sizes = {}
    for n in (6_000, 24_000):
        pid = make_project(name=f"big{n}", retrain_every=100_000)
        store.insert_items(db, pid, [(str(i), {"text": f"message number {i} " * 3}, "ham" if i % 2 else "spam")
                                     for i in range(n)])
        sizes[n] = _peaks(app, pid, "parquet")
    (small_py, small_arrow), (big_py, big_arrow) = sizes[6_000], sizes[24_000]
    # Holding the rows would add ~18,000 rows' worth (tens of MB); a batch is ~2,000 rows either way.
    assert big_py < 1.5 * small_py + 2_000_000, sizes
    assert big_arrow < 1.5 * small_arrow + 2_000_000, sizes


def test_the_project_page_offers_every_http_format(app, client, make_project):
    import re

    pid = _seeded(app, make_project, n=6)
    _label_all(client, pid, ["ham", "spam"])
    page = client.get(f"/projects/{pid}").get_data(as_text=True)
    links = [href.replace("&amp;", "&") for href in re.findall(r'href="(/api/projects/\d+/export\?[^"]+)"', page)]
    formats = {re.search(r"format=(\w+)", link).group(1) for link in links}
    assert formats == {"jsonl", "csv", "parquet", "labelstudio"}
    assert any("provenance=1" in link for link in links)
    for link in links:
        r = client.get(link)
        assert r.status_code == 200 and r.data, link


@pytest.mark.slow
def test_the_export_benchmark_runs_and_prints_its_peer_ratios(tmp_path):
    import pathlib
    import subprocess
    import sys

    script = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "export_memory.py"
    out = subprocess.run([sys.executable, str(script), "--items", "3000", "--formats", "parquet,pandas"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path, check=True).stdout
    assert "3,000  parquet" in out and "3,000   pandas" in out
    assert "Assay parquet / pandas read_sql + to_parquet: time" in out
