"""Retrain jobs as database rows (ASSAY_WORKERS=external) and `assay worker` processes that claim them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from assay import close_app, create_app, store
from assay.learning.jobqueue import JobWorker
from assay.learning.worker import THREAD_NAME

from tests.data import load_sms

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def db(db_setting):
    database = store.connect(db_setting)
    database.migrate()
    yield database
    database.close()


def _project(db, name="p") -> int:
    return store.create_project(db, {"name": name, "labels": ["ham", "spam"]})


def _claim(db, worker, lease=60.0, now=None):
    with db.write() as tx:
        return store.claim_job(tx, worker, lease, now=now)


def test_requests_coalesce_into_one_queued_job_per_project(db):
    a, b = _project(db, "a"), _project(db, "b")
    first = store.enqueue_job(db, a)
    assert store.enqueue_job(db, a) == first
    assert store.enqueue_job(db, b) != first
    assert [j["project_id"] for j in store.open_jobs(db)] == [a, b]
    # Once claimed, a new request queues behind the running job, and coalesces again from there.
    assert _claim(db, "w1")["id"] == first
    second = store.enqueue_job(db, a)
    assert second != first and store.enqueue_job(db, a) == second
    assert [j["state"] for j in store.open_jobs(db, a)] == ["running", "queued"]


def test_a_project_never_runs_two_jobs_at_once(db):
    a = _project(db)
    store.enqueue_job(db, a)
    assert _claim(db, "w1") is not None
    store.enqueue_job(db, a)
    assert _claim(db, "w2") is None  # the queued job waits for the running one


def test_two_claimers_in_two_handles_one_wins(db, tmp_path):
    # Two handles on one database are two processes as far as its locking goes (two writer connections).
    other = store.connect(db.path)
    try:
        store.enqueue_job(db, _project(db))
        barrier = threading.Barrier(2)
        got = {}

        def claim(handle, name):
            barrier.wait()
            got[name] = _claim(handle, name)

        threads = [threading.Thread(target=claim, args=(h, n)) for h, n in ((db, "w1"), (other, "w2"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        winners = [name for name, job in got.items() if job is not None]
        assert len(got) == 2 and len(winners) == 1
        (job,) = store.open_jobs(db)
        assert job["state"] == "running" and job["claimed_by"] == winners[0] and job["attempts"] == 1
    finally:
        other.close()


def test_a_lapsed_lease_is_retaken_and_a_heartbeat_keeps_it(db):
    a = _project(db)
    store.enqueue_job(db, a)
    now = time.time()
    job = _claim(db, "dead", lease=1.0, now=now)
    assert _claim(db, "w2", now=now + 0.5) is None  # the lease still holds
    # A heartbeat pushes the lease on; a worker that stops beating loses the job once it lapses.
    assert store.heartbeat_job(db, job["id"], "dead", 1.0, "fitting", 0.5, now=now + 0.9)
    assert _claim(db, "w2", now=now + 1.5) is None
    store.enqueue_job(db, a)  # a request meanwhile: the retake stands for it
    retaken = _claim(db, "w2", now=now + 2.5)
    assert retaken["id"] == job["id"] and retaken["claimed_by"] == "w2" and retaken["attempts"] == 2
    assert [j["id"] for j in store.open_jobs(db, a)] == [job["id"]]
    # The dead worker's heartbeat and result are refused from now on.
    assert not store.heartbeat_job(db, job["id"], "dead", 60.0)
    with db.write() as tx:
        assert not store.end_job(tx, job["id"], "dead", "done")
        assert store.end_job(tx, job["id"], "w2", "done")
    assert store.open_jobs(db) == [] and store.project_jobs(db, a)[0]["state"] == "done"


def test_a_released_job_is_claimable_at_once_and_not_counted(db):
    a = _project(db)
    store.enqueue_job(db, a)
    job = _claim(db, "w1")
    assert store.release_job(db, job["id"], "w1")
    again = _claim(db, "w2")
    assert again["id"] == job["id"] and again["attempts"] == 1


def _external_app(tmp_path, db_setting, **config):
    return create_app({"TESTING": True, "DATABASE": db_setting, "SEED": 0, "CACHE_DIR": str(tmp_path / "cache"),
                       "MEDIA_DIR": str(tmp_path / "media"), "WORKERS": "external", "RETRAIN_TIMEOUT": 120.0,
                       **config})


def _seed(client, pid, n=120, seeded=30):
    rows = load_sms(n, distinct=True)  # no copies of a seed's text, which its label would reach
    payload = [{"id": str(i), "text": r["text"], "label": r["label"]} for i, r in enumerate(rows[:seeded])]
    payload += [{"id": str(i), "text": r["text"]} for i, r in enumerate(rows[seeded:], seeded)]
    assert client.post(f"/api/projects/{pid}/items?label_column=label", json=payload).status_code in (200, 201)


def _service_threads() -> set[int]:
    return {t.ident for t in threading.enumerate() if t.name in (THREAD_NAME, "assay-warm")}


def test_external_mode_starts_no_worker_and_queues_jobs(tmp_path, db_setting):
    # Other tests' apps (module- or session-scoped) may have their own dispatcher running: only new ones count.
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    threads_before = _service_threads()
    app = _external_app(tmp_path, db_setting)
    client = app.test_client()
    try:
        service = app.extensions["assay.retrain"]
        service.warm()  # what `assay serve` does at start
        pid = client.post("/api/projects", json={"name": "x", "labels": ["ham", "spam"],
                                                 "featurizer": "tfidf"}).json["id"]
        _seed(client, pid)
        time.sleep(0.5)
        assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
        assert not _service_threads() - threads_before
        assert not service.alive()
        (job,) = store.open_jobs(app.extensions["assay.db"], pid)
        assert job["state"] == "queued"
        assert client.post(f"/api/projects/{pid}/retrain").status_code in (200, 202, 409)
        assert len(store.open_jobs(app.extensions["assay.db"], pid)) == 1
        stats = client.get(f"/api/projects/{pid}/stats")
        assert stats.status_code == 200 and stats.json["retrain_progress"] == {"stage": "waiting", "fraction": 0.0}
        assert len(client.get(f"/api/projects/{pid}/queue?n=5").json) == 5  # served without any model
    finally:
        close_app(app)


def test_a_worker_starts_its_retrain_process_before_the_first_job(tmp_path, db_setting):
    """`assay worker` warms its retrain child at start (the web process with external workers never does), so
    the first job does not pay for importing the models."""
    app = _external_app(tmp_path, db_setting)
    try:
        service = app.extensions["assay.retrain"]
        service.warm(for_jobs=True)
        deadline = time.monotonic() + 60
        while not (service._process is not None and service._process.is_alive()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert service._process is not None and service._process.is_alive()
        assert store.open_jobs(app.extensions["assay.db"]) == []  # warmed with no job in sight
    finally:
        close_app(app)


def test_an_in_process_worker_records_the_job_like_the_dispatcher(tmp_path, db_setting):
    app = _external_app(tmp_path, db_setting)
    client = app.test_client()
    try:
        pid = client.post("/api/projects", json={"name": "x", "labels": ["ham", "spam"], "featurizer": "tfidf",
                                                 "batch_size": 5}).json["id"]
        _seed(client, pid)
        worker = JobWorker(app.extensions["assay.retrain"], lease=10.0, name="inproc")
        assert worker.run(once=True) == 1
        db = app.extensions["assay.db"]
        (job,) = store.project_jobs(db, pid)
        assert job["state"] == "done" and job["claimed_by"] == "inproc" and job["finished_at"] is not None
        assert store.latest_version(db, pid)["status"] == "ok"
        assert store.open_jobs(db) == [] and worker.run(once=True) == 0
        stats = client.get(f"/api/projects/{pid}/stats").json
        assert stats["retrain_progress"] is None and stats["history"][-1]["n_labels"] == 30
    finally:
        close_app(app)


def test_a_job_whose_workers_keep_dying_is_recorded_as_failed(tmp_path, db_setting):
    app = _external_app(tmp_path, db_setting)
    client = app.test_client()
    try:
        pid = client.post("/api/projects", json={"name": "x", "labels": ["ham", "spam"],
                                                 "featurizer": "tfidf"}).json["id"]
        _seed(client, pid)
        db = app.extensions["assay.db"]
        worker = JobWorker(app.extensions["assay.retrain"], lease=60.0, max_attempts=2, name="next")
        past = time.time() - 3600
        for attempt in range(2):  # two workers that claimed it and died
            with db.write() as tx:
                assert store.claim_job(tx, f"dead{attempt}", 1.0, now=past + attempt * 10)["attempts"] == attempt + 1
        assert worker.claim() is None
        (job,) = store.project_jobs(db, pid)
        assert job["state"] == "failed" and "started 2 times" in job["error"]
        version = store.latest_version(db, pid)
        assert version["status"] == "failed" and "started 2 times" in version["error"]
    finally:
        close_app(app)


def _worker_process(tmp_path, db_setting, name):
    env = dict(os.environ, ASSAY_DATABASE=db_setting, ASSAY_WORKERS="external",
               ASSAY_JOB_LEASE="2", ASSAY_INSTANCE_PATH=str(tmp_path / "instance"), ASSAY_SEED="0")
    log = open(tmp_path / f"{name}.log", "w")
    # A session of its own: killing it with its child is a machine dying mid-job.
    return subprocess.Popen([sys.executable, "-m", "assay.cli", "worker", "--poll", "0.2"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_killed_worker_s_job_is_retaken_by_another_and_no_label_is_lost(tmp_path, db_setting):
    app = _external_app(tmp_path, db_setting, MODELS="tests.plugin_models:sleepy", JOB_LEASE=2.0)
    client = app.test_client()
    db = app.extensions["assay.db"]
    workers = []
    try:
        pid = client.post("/api/projects", json={"name": "x", "labels": ["ham", "spam"], "featurizer": "tfidf",
                                                 "model": "tests.plugin_models:sleepy", "strategy": "margin",
                                                 "batch_size": 5, "retrain_every": 1000}).json["id"]
        _seed(client, pid)
        workers.append(_worker_process(tmp_path, db_setting, "first"))
        running = _until(lambda: [j for j in store.open_jobs(db, pid) if j["state"] == "running"], 120,
                         "the first worker to claim the job")[0]
        _until(lambda: store.open_jobs(db, pid)[0]["stage"], 60, "the first worker's job to report progress")
        time.sleep(2.0)
        os.killpg(workers[0].pid, signal.SIGKILL)
        workers[0].wait(10)
        assert store.latest_version(db, pid) is None  # it died in the sleepy model's fit

        # Labels keep coming while no worker runs; the next model must be quick.
        items = client.get(f"/api/projects/{pid}/queue?n=3", headers={"X-Assay-Annotator": "ann"}).json
        for item in items:
            assert client.post(f"/api/projects/{pid}/annotations", json={"item_id": item["id"], "label": "ham"},
                               headers={"X-Assay-Annotator": "ann"}).status_code == 201
        assert client.patch(f"/api/projects/{pid}", json={"model": "logreg"}).status_code == 200

        workers.append(_worker_process(tmp_path, db_setting, "second"))
        _until(lambda: not store.open_jobs(db, pid), 180, "the second worker to retake and finish the job")
        (job,) = store.project_jobs(db, pid)
        assert job["id"] == running["id"] and job["state"] == "done" and job["attempts"] == 2
        assert job["claimed_by"] != running["claimed_by"]
        version = store.latest_version(db, pid)
        assert version["status"] == "ok" and version["n_labels"] == 33  # the seed labels and the three since
        assert store.counts(db, pid)["labeled"] == 33
        stats = client.get(f"/api/projects/{pid}/stats").json
        assert stats["history"][-1]["status"] == "ok" and stats["retrain_progress"] is None

        # SIGTERM: the worker stops cleanly.
        workers[1].send_signal(signal.SIGTERM)
        assert workers[1].wait(30) == 0
    finally:
        for proc in workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        close_app(app)


@pytest.mark.slow
def test_sigterm_mid_job_hands_the_job_back_at_once(tmp_path, db_setting):
    app = _external_app(tmp_path, db_setting, MODELS="tests.plugin_models:sleepy")
    client = app.test_client()
    db = app.extensions["assay.db"]
    proc = None
    try:
        pid = client.post("/api/projects", json={"name": "x", "labels": ["ham", "spam"], "featurizer": "tfidf",
                                                 "model": "tests.plugin_models:sleepy", "strategy": "margin",
                                                 "batch_size": 5}).json["id"]
        _seed(client, pid)
        proc = _worker_process(tmp_path, db_setting, "termed")
        _until(lambda: [j for j in store.open_jobs(db, pid) if j["state"] == "running" and j["stage"]], 120,
               "the worker to start the job")
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0  # long before the sleepy model's 60 s fit ends
        (job,) = store.project_jobs(db, pid)
        assert job["state"] == "queued" and job["attempts"] == 0 and job["claimed_by"] is None
        assert store.latest_version(db, pid) is None
        # The worker's own children (the retrain child; multiprocessing's resource tracker, which leaves when it
        # reads its parent's exit) may take a moment on a loaded machine; one still fitting after 5 s was left.
        psutil.wait_procs(children, timeout=5)
        assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        close_app(app)
