"""Shutting an app down stops and joins its retrain thread and worker process before the database closes.

Closing an SQLite connection while another thread uses it can crash the interpreter: CI once died with a
segmentation fault while a retrain thread left by an earlier test's app was inside ``store.get_project``.
"""
from __future__ import annotations

import threading
import time

import pytest

from assay import close_app, create_app
from assay.learning import worker
from assay.learning.worker import THREAD_NAME
from tests.data import load_sms


def _retrain_threads(service):
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t is service._thread]


@pytest.fixture
def fresh_app(tmp_path):
    app = create_app({"TESTING": True, "DATABASE": str(tmp_path / "assay.sqlite"), "SEED": 0,
                      "RETRAIN_TIMEOUT": 120.0, "MODELS": "tests.plugin_models:sleepy"})
    yield app
    close_app(app)  # a second close is harmless: the tests below close it themselves


def _project(client, model="logreg", n=60, labeled=0):
    pid = client.post("/api/projects", json={"name": "p", "labels": ["ham", "spam"], "strategy": "margin",
                                             "model": model, "batch_size": 5}).json["id"]
    rows = load_sms(n) if n else []
    # Both classes among the labeled rows, so a fit is attempted.
    seeded = {i for label in ("ham", "spam")
              for i in [j for j, r in enumerate(rows) if r["label"] == label][:labeled // 2]}
    payload = [{"id": str(i), "text": r["text"], **({"label": r["label"]} if i in seeded else {})}
               for i, r in enumerate(rows)]
    if payload:
        assert client.post(f"/api/projects/{pid}/items?label_column=label", json=payload).status_code == 200
    return pid


def test_close_app_waits_for_a_thread_inside_the_database(fresh_app, monkeypatch):
    """The crash: the dispatcher thread is reading the project when the app is shut down."""
    service = fresh_app.extensions["assay.retrain"]
    client = fresh_app.test_client()
    pid = _project(client, n=0)  # no items: nothing starts a retrain but the request below
    entered, outcome = threading.Event(), []
    real = worker.store.get_project

    def slow_get_project(conn, project_id):
        entered.set()
        time.sleep(1.0)  # the app is being shut down meanwhile
        try:
            outcome.append(real(conn, project_id))
        except BaseException as exc:  # a closed database raises here (or crashes the process)
            outcome.append(exc)
            raise
        return outcome[-1]

    monkeypatch.setattr(worker.store, "get_project", slow_get_project)
    service.request(pid)
    assert entered.wait(30)
    thread = service._thread
    close_app(fresh_app)
    assert not thread.is_alive() and not service.alive()
    assert len(outcome) == 1 and isinstance(outcome[0], dict), outcome  # it read an open database
    assert _retrain_threads(service) == []


def test_close_app_stops_a_job_in_progress(fresh_app):
    """Mid-job (a model that sleeps in fit): the worker process is killed and the thread joined, quickly."""
    service = fresh_app.extensions["assay.retrain"]
    client = fresh_app.test_client()
    _project(client, model="tests.plugin_models:sleepy", labeled=20)
    deadline = time.monotonic() + 120
    while (service.progress(1) or {}).get("stage") != "fitting":
        assert time.monotonic() < deadline, service.progress(1)
        time.sleep(0.1)
    thread, process = service._thread, service._process
    assert thread.is_alive() and process.is_alive()
    started = time.monotonic()
    close_app(fresh_app)
    assert time.monotonic() - started < 10
    assert not thread.is_alive() and not process.is_alive() and not service.alive()
    assert fresh_app.extensions["assay.db"]._readers == []  # closed, after the thread was gone


def test_a_shut_down_service_starts_no_thread(fresh_app):
    service = fresh_app.extensions["assay.retrain"]
    assert service.shutdown() and not service.alive()
    service.request(1)
    assert service._thread is None and not service.busy(1)


def test_a_warmed_worker_starts_before_any_retrain_and_stops_with_the_app(fresh_app):
    """`assay serve` warms the worker at start, so the first retrain does not wait for its imports."""
    service = fresh_app.extensions["assay.retrain"]
    started = time.monotonic()
    service.warm()
    assert time.monotonic() - started < 1  # returns at once: the server's start is not delayed
    service._warmer.join(120)
    process = service._process
    assert process is not None and process.is_alive() and service._thread is None
    assert service._ensure_process() and service._process is process  # a job would reuse it
    close_app(fresh_app)
    assert not process.is_alive() and not service.alive()
