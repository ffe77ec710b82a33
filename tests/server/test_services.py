"""An app is built idle: the store handle migrates before its first connection is used, and threads start
only where a process runs on (assay.services) or when work comes."""
from __future__ import annotations

import threading

from assay import close_app, create_app, services, store
from assay.learning.worker import THREAD_NAME
from assay.webhooks.sender import THREAD_NAME as SENDER_THREAD


def test_a_new_handle_brings_the_schema_up_to_date_before_its_first_connection(make_database):
    handle = store.connect(make_database())
    try:
        assert store.list_projects(handle) == []  # the first read found the tables
        assert handle.migrate() == []  # and nothing is left to apply
    finally:
        handle.close()


def test_threads_meeting_a_new_database_at_once_migrate_it_once(tmp_path, monkeypatch):
    handle = store.connect(str(tmp_path / "new.sqlite"))
    runs = []
    apply = handle._apply_migrations

    def counted():
        runs.append(threading.current_thread().name)
        return apply()

    monkeypatch.setattr(handle, "_apply_migrations", counted)
    barrier = threading.Barrier(8)
    seen, errors = [], []

    def read():
        barrier.wait()
        try:
            seen.append(store.list_projects(handle))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    handle.close()
    assert errors == [] and seen == [[]] * 8
    assert len(runs) == 1


def test_migrate_says_what_it_applied_on_a_new_database(tmp_path):
    handle = store.connect(str(tmp_path / "new.sqlite"))
    try:
        applied = handle.migrate()
        assert applied[0] == "0001_initial" and handle.migrate() == []
    finally:
        handle.close()


def test_create_app_builds_an_idle_app(tmp_path, db_setting):
    before = {t.name for t in threading.enumerate()}
    app = create_app({"TESTING": True, "DATABASE": db_setting, "CACHE_DIR": str(tmp_path / "cache")})
    try:
        database = app.extensions["assay.db"]
        assert database._writer is None and database._readers == []  # no connection yet
        services.start(app)  # nothing is due: the sender stays idle
        started = {t.name for t in threading.enumerate()} - before
        assert not any(name.startswith((THREAD_NAME, SENDER_THREAD)) for name in started), started
        assert not app.extensions["assay.webhooks"].alive() and not app.extensions["assay.retrain"].alive()
    finally:
        close_app(app)
