"""The retrain's typed records, the service's policy of when to retrain, and the one import path."""
from __future__ import annotations

import dataclasses
import multiprocessing as mp
import pickle

import pytest

from assay import store
from assay.domain import ingest
from assay.domain.stats import project_stats
from assay.learning.records import Job, JobFailed, JobResult, ModelVersion, Progress, Ready

VERSION = ModelVersion(
    status="ok", model="logreg", strategy="margin", n_labels=12, label_counts={"ham": 7, "spam": 5}, pool_size=88,
    ranked=40,
    accuracy=0.75, accuracy_std=0.05, accuracy_method="5-fold CV on the labeled set", fit_seconds=0.5,
    acquire_seconds=0.25, total_seconds=1.5, estimate=0.8, estimate_low=0.7, estimate_high=0.9, kappa=0.6,
    stop_signal=0, evaluation={"estimate": {"accuracy": 0.8}, "stopping": {"settled": False}},
    stop_predictions={3: "ham", 4: "spam"},
)
MESSAGES = [Job("/tmp/a.sqlite", "/tmp/cache", "/tmp/media", 7, {"seed": 0, "k_samples": 20}),
            JobResult(VERSION, [{"item_id": 3, "score": 0.5, "strategy": "margin", "prediction": None}]),
            JobResult(None, None, featurized=(300, 1000)), Progress("featurizing", 0.25), JobFailed("RuntimeError: no", "Traceback ..."), Ready()]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_survives_pickle_and_the_pipe(message):
    assert pickle.loads(pickle.dumps(message)) == message
    sender, receiver = mp.get_context("spawn").Pipe()
    try:
        sender.send(message)
        assert receiver.recv() == message
    finally:
        sender.close()
        receiver.close()


def test_records_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        VERSION.status = "failed"


def test_a_model_version_round_trips_through_the_store_row(app, make_project):
    db = app.extensions["assay.db"]
    pid = make_project()
    number = store.replace_queue(db, pid, [], VERSION.as_row())
    stored = store.model_versions(db.reader, pid)[-1]
    back = ModelVersion.from_row(stored)
    # The stop-set predictions are kept beside the version, not in its row.
    assert back == dataclasses.replace(VERSION, version=number, created_at=stored["created_at"], stop_predictions=None)
    assert ModelVersion.from_row(store.latest_version(db.reader, pid)) == back  # JSON columns still encoded there
    assert store.stop_predictions(db.reader, pid, 12)["predictions"] == {3: "ham", 4: "spam"}
    # The stats route lists it as it did: these fields, in this order, with the stored values.
    history = project_stats(db.reader, store.get_project(db.reader, pid))["history"]
    assert history == [{k: stored[k] for k in (
        "version", "status", "model", "strategy", "n_labels", "label_counts", "accuracy", "accuracy_std",
        "accuracy_method", "estimate", "estimate_low", "estimate_high", "kappa", "stop_signal", "fit_seconds",
        "acquire_seconds", "total_seconds", "pool_size", "ranked", "error", "created_at")}]
    assert list(history[0]) == list(back.public())


def test_a_failure_is_recorded_with_empty_label_counts(app, make_project):
    db = app.extensions["assay.db"]
    pid = make_project()
    failure = ModelVersion(status="timeout", model="logreg", strategy="margin", n_labels=0, error="too slow")
    store.replace_queue(db, pid, None, failure.as_row())
    row = store.model_versions(db.reader, pid)[-1]
    assert row["label_counts"] == {} and row["evaluation"] is None and row["error"] == "too slow"


# -- when to retrain -------------------------------------------------------------

@pytest.fixture
def recorded(app, monkeypatch):
    """The app's service with requests recorded instead of run, and ``running`` the projects it is busy with."""
    service = app.extensions["assay.retrain"]
    service.asked, service.running = [], set()
    monkeypatch.setattr(service, "request", service.asked.append)
    monkeypatch.setattr(service, "busy", lambda project_id: project_id in service.running)
    return service


def _label(db, pid: int, item_id: int):
    store.add_annotation(db, pid, item_id, "ann", "ham", False, overlap=1)


def test_labels_arrived_retrains_every_retrain_every_labels_and_never_while_one_runs(app, make_project, recorded):
    db = app.extensions["assay.db"]
    pid = make_project(retrain_every=3)
    project = store.get_project(db.reader, pid)
    assert not recorded.labels_arrived(project)  # no items: nothing to do
    store.insert_items(db, pid, [(str(i), {"text": f"text {i}"}, None) for i in range(10)])
    item_ids = [r[0] for r in db.reader.execute("SELECT id FROM items WHERE project_id = ? ORDER BY id", (pid,))]
    assert recorded.labels_arrived(project) and recorded.asked == [pid]  # items and no model: the first job
    recorded.running.add(pid)
    assert not recorded.labels_arrived(project)
    recorded.running.clear()
    store.replace_queue(db, pid, None, ModelVersion("cold_start", "logreg", "default", n_labels=0).as_row())
    answers = []
    for item_id in item_ids[:7]:
        _label(db, pid, item_id)
        answers.append(recorded.labels_arrived(project))
    assert answers == [False, False, True, True, True, True, True]  # 3 labels beyond version 1 (0 labels)
    store.replace_queue(db, pid, None, ModelVersion("ok", "logreg", "default", n_labels=7).as_row())
    assert not recorded.labels_arrived(project)
    for item_id in item_ids[7:10]:
        _label(db, pid, item_id)
    recorded.running.add(pid)
    assert not recorded.labels_arrived(project)  # due, but one runs: the dispatcher looks again when it ends
    assert recorded._labels_arrived_meanwhile(pid)
    recorded.running.clear()
    recorded.asked.clear()
    assert recorded.labels_arrived(project) and recorded.asked == [pid]


def test_the_owners_retrain_starts_one_unless_one_runs(app, make_project, recorded):
    db = app.extensions["assay.db"]
    pid = make_project()
    store.replace_queue(db, pid, None, ModelVersion("ok", "logreg", "default", n_labels=0).as_row())
    assert recorded.retrain_now(pid) and recorded.asked == [pid]  # not due by the count: asked all the same
    recorded.running.add(pid)
    assert not recorded.retrain_now(pid) and recorded.asked == [pid]


def test_the_views_leave_the_policy_to_the_service(app, client, make_project, monkeypatch):
    service = app.extensions["assay.retrain"]
    calls = []
    monkeypatch.setattr(service, "labels_arrived", lambda project: calls.append(("labels", project["id"])))
    monkeypatch.setattr(service, "retrain_now", lambda project_id: calls.append(("now", project_id)))
    monkeypatch.setattr(service, "request", lambda project_id: calls.append(("import", project_id)))
    pid = make_project()
    client.post(f"/api/projects/{pid}/items", json=[{"id": "1", "text": "hello"}])
    item_id = client.get(f"/api/projects/{pid}/queue?n=1").json[0]["id"]
    client.post(f"/api/projects/{pid}/annotations", json={"item_id": item_id, "label": "ham"})
    assert client.post(f"/api/projects/{pid}/retrain").status_code == 202
    assert calls == [("import", pid), ("labels", pid), ("labels", pid), ("now", pid)]


# -- one import path ---------------------------------------------------------------

@pytest.fixture
def imports(monkeypatch):
    """Every call of ingest.import_items, which still does the import."""
    calls = []
    real = ingest.import_items

    def spy(db, project, source, *args, **kwargs):
        result = real(db, project, source, *args, **kwargs)
        calls.append((project["name"], result))
        return result

    monkeypatch.setattr(ingest, "import_items", spy)
    return calls


def test_the_api_imports_through_import_items(client, make_project, imports):
    pid = make_project()
    r = client.post(f"/api/projects/{pid}/items", data=b"id,text\n1,one\n2,two\n", content_type="text/csv")
    assert r.json == {"imported": 2, "skipped": 0}
    r = client.post(f"/api/projects/{pid}/items", json=[{"id": "2", "text": "two"}, {"id": "3", "text": "three"}])
    assert r.json == {"imported": 1, "skipped": 1}
    assert imports == [("spam", ingest.ImportResult(2, 0)), ("spam", ingest.ImportResult(1, 1))]


def test_the_cli_imports_through_import_items(runner, tmp_path, imports):
    runner.invoke(args=["create-project", "sms", "--labels", "ham,spam"])
    data = tmp_path / "items.csv"
    data.write_text("id,text,label\n1,free prize now,spam\n2,see you at lunch,ham\n")
    result = runner.invoke(args=["import", "sms", str(data), "--label-column", "label"])
    assert "imported 2, skipped 0" in result.output
    assert imports == [("sms", ingest.ImportResult(2, 0))]


def test_the_demo_imports_through_import_items(app, runner, imports, monkeypatch):
    monkeypatch.setattr(app.extensions["assay.retrain"], "request", lambda project_id: None)
    result = runner.invoke(args=["demo", "--no-serve"])
    assert result.exit_code == 0, result.output
    # 403 of the 5,574 messages repeat an earlier one word for word (served once, labeled together: issue 29.5).
    assert imports == [("sms-spam-demo", ingest.ImportResult(5574, 0, duplicates=403))]
    assert "403 of them repeat another message word for word" in result.output


def test_import_items_checks_every_row_before_writing_one(app, make_project):
    db = app.extensions["assay.db"]
    project = store.get_project(db.reader, make_project())
    with pytest.raises(Exception, match="row 2: unknown label 'maybe'"):
        ingest.import_items(db, project, b"id,text,label\n1,one,ham\n2,two,maybe\n",
                            ingest.ImportOptions(label_column="label"), filename="x.csv")
    assert store.counts(db.reader, project["id"])["total"] == 0
    updates = []

    class Bar:
        def __init__(self, total):
            updates.append(("rows", total))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            updates.append(("done", n))

    result = ingest.import_items(db, project, b'[{"text": "a"}, {"text": "b"}]', progress=Bar)
    assert result.as_dict() == {"imported": 2, "skipped": 0} and updates == [("rows", 2), ("done", 2)]
