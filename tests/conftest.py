"""Shared fixtures: the real data sets, and a Flask app on a temporary database (flaskr style).

The app's database is a SQLite file, or with ``--postgres`` (or ``ASSAY_TEST_POSTGRES``, see tests/pg.py) a
fresh PostgreSQL database: the tests that take ``db_setting`` (through ``app``, ``client``, ``runner``, or
the team tests' servers) then run on PostgreSQL.
"""
from __future__ import annotations

import os
import threading
import weakref

import pytest

from tests.data import load_sms


def pytest_addoption(parser):
    parser.addoption("--postgres", action="store_true",
                     help="run the database tests on a throwaway PostgreSQL cluster (or on the server "
                          "ASSAY_TEST_POSTGRES=postgresql://... names) instead of SQLite")


def _postgres_wanted(config) -> str | None:
    """None: SQLite. Else "start" (a throwaway cluster) or the URL of a running server."""
    value = os.environ.get("ASSAY_TEST_POSTGRES", "").strip()
    if value.startswith(("postgresql://", "postgres://")):
        return value
    if config.getoption("--postgres", default=False) or value.lower() in ("1", "true", "yes", "start"):
        return "start"
    return None


def pytest_collection_modifyitems(config, items):
    """On PostgreSQL, run only the tests whose database is PostgreSQL (those that take the ``postgres`` fixture,
    through ``db_setting``, ``make_database``, ``app`` or the team servers): the others would run on SQLite
    again, exactly as in the SQLite pass, and only cost time."""
    if _postgres_wanted(config) is None:
        return
    kept = [item for item in items if "postgres" in item.fixturenames]
    dropped = [item for item in items if "postgres" not in item.fixturenames]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def postgres(request):
    """The session's PostgreSQL databases (tests.pg.Databases), or None when the tests run on SQLite. Under
    pytest-xdist each worker has its own: its own cluster, or its own template database on a given server."""
    wanted = _postgres_wanted(request.config)
    if wanted is None:
        yield None
        return
    from tests.pg import Cluster, Databases

    cluster = Cluster().start() if wanted == "start" else None
    databases = Databases(cluster.url if cluster else wanted)
    try:
        yield databases
    finally:
        databases.close()
        if cluster is not None:
            cluster.stop()


@pytest.fixture
def make_database(postgres, tmp_path):
    """A factory of fresh databases for this test: ``make_database(folder)`` gives a DATABASE setting (a SQLite
    file in ``folder``, or a new PostgreSQL database); the PostgreSQL ones are dropped after the test."""
    made = []

    def make(folder=None, name="assay.sqlite"):
        if postgres is None:
            return str((folder or tmp_path) / name)
        url = postgres.create()
        made.append(url)
        return url

    yield make
    for url in made:
        postgres.drop(url)


@pytest.fixture
def db_setting(make_database):
    """The DATABASE setting of this test's app: a SQLite file, or a fresh PostgreSQL database."""
    return make_database()


@pytest.fixture
def on_postgres(postgres) -> bool:
    return postgres is not None


@pytest.fixture
def sms():
    return load_sms


def _leftovers(services):
    """The services whose dispatcher thread or worker process is still running."""
    return [s for s in services if s.alive()]


# Test folders whose apps import the demo's SMS texts into text projects (default featurizer: MiniLM).
_SMS_USERS = ("browser", "server", "team", "simulate")


@pytest.fixture(autouse=True, scope="session")
def session_embedding_cache(tmp_path_factory, request):
    """One content-hash embedding cache for the whole session (apps, worker processes, simulations): each
    distinct text is embedded by the real MiniLM model once per session, and a worker whose texts are all
    cached never loads the model. A cache folder named in the environment beforehand is used as it is (CI
    names one folder for the demo and every pytest run, so that the texts are embedded once per CI run).

    When the session runs tests that make apps, the demo's 5,574 SMS texts (which most of them import) are
    embedded first, here, with every core: once, instead of by whichever test's one-thread worker meets them.
    Under pytest-xdist the workers share one folder (beside their own temp folders) and a file lock: the
    first worker embeds, the others wait for it, then find every text cached (a lookup each)."""
    given = os.environ.get("ASSAY_EMBEDDING_CACHE")
    if given:
        folder = given
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        folder = str(tmp_path_factory.getbasetemp().parent / "embeddings")  # the same for every worker
    else:
        folder = str(tmp_path_factory.mktemp("embeddings"))
    os.makedirs(folder, exist_ok=True)
    os.environ["ASSAY_EMBEDDING_CACHE"] = folder
    try:
        folders = {part for item in request.session.items for part in item.path.parts}
        if folders & set(_SMS_USERS):
            from filelock import FileLock

            # Texts already cached cost a lookup each, and the model is loaded only for the missing ones.
            with FileLock(os.path.join(folder, "demo-texts.lock")):
                _embed_the_demo_texts(folder)
        yield folder
    finally:
        if not given:
            os.environ.pop("ASSAY_EMBEDDING_CACHE", None)


def _embed_the_demo_texts(folder: str) -> None:
    import torch

    from assay.features import SentenceEmbedding
    from assay.learning import embcache

    threads = torch.get_num_threads()
    torch.set_num_threads(max(os.cpu_count() or 1, 1))
    try:
        items = [{"text": row["text"]} for row in load_sms()]
        embcache.attach(SentenceEmbedding(), folder).fit(items).transform(items)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def no_retrain_thread_outlives_its_app():
    """Every app a test makes (directly or through a function-scoped fixture) is shut down by the end of the
    test, with its `assay-retrain` thread and worker process gone. (Session-scoped apps, such as the browser
    tests' live servers, were made before the test and are checked at the end of the session.)"""
    from assay.learning.worker import live_services

    before = weakref.WeakSet(live_services())
    yield
    made_here = [s for s in live_services() if s not in before]
    left = _leftovers(made_here) + _leftovers(s for s in live_services() if s._stopped)
    assert not left, (f"{len(left)} retrain service(s) still running after the test: an app was not shut down "
                      "with server.close_app (its thread would use the database after it is closed)")


@pytest.fixture(autouse=True)
def no_webhook_sender_outlives_its_app():
    """Likewise for the webhook sender thread each app has: close_app stops and joins it."""
    from assay.webhooks.sender import live_senders

    before = weakref.WeakSet(live_senders())
    yield
    left = [s for s in live_senders() if s not in before and s.alive()]
    assert not left, f"{len(left)} webhook sender thread(s) still running after the test: an app was not closed"


@pytest.fixture(autouse=True, scope="session")
def no_retrain_thread_at_the_end():
    yield
    from assay.learning.worker import THREAD_NAME

    alive = [t for t in threading.enumerate() if t.name == THREAD_NAME]
    assert not alive, f"{len(alive)} {THREAD_NAME} thread(s) alive at the end of the session"


@pytest.fixture
def app(tmp_path, db_setting):
    """The app as an `assay` command has it: built idle, its database opened (assay.services.open_database);
    its retrain service and webhook sender start their threads when the first job or delivery comes."""
    from assay import close_app, create_app, services

    app = create_app({"TESTING": True, "DATABASE": db_setting, "SEED": 0, "RETRAIN_TIMEOUT": 120.0,
                      "CACHE_DIR": str(tmp_path / "cache"), "MEDIA_DIR": str(tmp_path / "media")})
    services.open_database(app)
    yield app
    close_app(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_project(client):
    def make(name="spam", labels=("ham", "spam"), **fields):
        r = client.post("/api/projects", json={"name": name, "labels": list(labels), **fields})
        assert r.status_code == 201, r.json
        return r.json["id"]

    return make
