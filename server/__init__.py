"""Assay's Flask app: ``create_app()`` builds it, ``assay`` (assay.cli) runs it."""
from __future__ import annotations

import os
import secrets

from flask import Flask, Request, current_app

from .domain.settings import SQLITE_MAX
from .learning.defaults import K_SAMPLES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# templates/ beside server/ in a checkout (and an editable install); inside the package once installed.
TEMPLATES = next((path for path in (os.path.join(ROOT, "templates"),
                                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))
                  if os.path.isdir(path)), os.path.join(ROOT, "templates"))

DEFAULTS = {
    "AUTH": False,
    # With AUTH off, the host names (besides loopback ones) requests may be addressed to: comma-separated or a list.
    "ALLOWED_HOSTS": [],
    "RETRAIN_TIMEOUT": 300.0,  # seconds before a retrain is killed
    "LEASE_SECONDS": 600.0,  # how long a pulled item stays reserved for its annotator
    "K_SAMPLES": K_SAMPLES,  # posterior samples per item for BALD-type strategies
    "CV_FOLDS": 5,
    # Items the queue ranks after each retrain (the batch, then the rest by a per-item score); None means
    # max(20 x batch_size, 500). Capped by the pool.
    "QUEUE_DEPTH": None,
    # A new project's pool is featurized (embedded) in steps beside its retrains: a retrain ranks at least
    # MIN_RANKED pool items, featurizing them first if need be; the rest follows in slices of about
    # FEATURIZE_SLICE seconds whenever no retrain waits, FEATURIZE_STEP items per committed step.
    "MIN_RANKED": 512,
    "FEATURIZE_SLICE": 4.0,
    "FEATURIZE_STEP": 256,
    # Math threads of the retrain worker: one, so the web process keeps the other core (of two) to itself.
    "WORKER_THREADS": 1,
    # The worker's niceness. 0: on a busy machine a niced worker starves (beside one CPU-bound process and other
    # load, the first model took 135 s at nice 10 and 20 s at 0, labels' p99 12 ms at 0; BENCHMARKS.md).
    "WORKER_NICE": 0,
    # "embedded": the server retrains in a worker process of its own. "external": it only queues jobs in the
    # database, and `assay worker` processes (on this machine or others) claim them.
    "WORKERS": "embedded",
    "JOB_LEASE": 60.0,  # seconds a worker holds a claimed job without a heartbeat before another may retake it
    "JOB_ATTEMPTS": 3,  # claims of one job (the worker died each time) before it is recorded as failed
    "MAX_CONTENT_LENGTH": 256 * 1024 * 1024,  # bytes per item import (file uploads): 413 beyond
    "MAX_JSON_BYTES": 1024 * 1024,  # bytes per request on every other route (labels, settings): 413 beyond
    "MAX_ITEM_BYTES": 1024 * 1024,  # bytes per imported item: 413 beyond
    "RATE_LIMIT": 100.0,  # requests per second per client on average (0 turns it off): 429 beyond
    "RATE_BURST": 500.0,
    # Failed logins in a row before each further try must wait 1, 2, 4 ... s (at most the cap) after the last
    # one: per name (from any address), per address (for any name). See assay.web.lockout.
    "LOGIN_FAILURES_PER_NAME": 5,
    "LOGIN_FAILURES_PER_ADDRESS": 20,
    "LOGIN_BACKOFF_CAP": 900.0,
    "SEED": None,
    # Webhooks post only to these hosts: "host" or "host:port", comma-separated or a list; this machine
    # (loopback included) and private networks only when listed. WEBHOOK_ANY_HOST also allows any host whose
    # addresses are all public and not this machine's. See assay.webhooks.policy.
    "WEBHOOK_HOSTS": [],
    "WEBHOOK_ANY_HOST": False,
    "WEBHOOK_TIMEOUT": 10.0,  # seconds for a whole delivery attempt: resolving, connecting, sending, the answer's head
    "WEBHOOK_PARALLEL": 4,  # deliveries in flight at once (one per receiver; one project takes at most half)
    "WEBHOOK_MAX_ATTEMPTS": 15,  # then the delivery is given up (about 3 hours after the first)
    "WEBHOOK_BACKOFF": 1.0,  # seconds before the first retry; doubled after each failed attempt
    "WEBHOOK_BACKOFF_CAP": 3600.0,
}


# Routes that take files; every other one reads small JSON or forms, so one annotator posting
# a 20 MB "label" is refused instead of growing the server by hundreds of MB.
UPLOAD_ENDPOINTS = frozenset({"api.import_items"})


class AssayRequest(Request):
    @property
    def size_setting(self) -> str:
        """The config key that limits this request's body."""
        return "MAX_CONTENT_LENGTH" if self.endpoint in UPLOAD_ENDPOINTS else "MAX_JSON_BYTES"

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None or not current_app:
            return super().max_content_length
        limit = current_app.config.get(self.size_setting)
        return int(limit) if limit is not None else None

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def create_app(test_config: dict | None = None, *, web: bool = True) -> Flask:
    """The app. ``web=False`` leaves out the pages and the API (the CLI's commands that serve nothing): their
    modules import numpy and scipy, most of a second of CPU that `assay export` would pay for nothing."""
    instance_path = os.environ.get("ASSAY_INSTANCE_PATH") or os.path.join(ROOT, "instance")
    app = Flask(
        __name__,
        instance_path=instance_path,
        instance_relative_config=True,
        template_folder=TEMPLATES,
        static_folder=None,  # the pages blueprint serves web/static/ at /static
    )
    app.request_class = AssayRequest
    # Items keep their fields in the file's order (a table's columns as the file has them); Flask would sort them.
    app.json.sort_keys = False
    app.config.from_mapping(DEFAULTS)
    app.config["DATABASE"] = os.path.join(app.instance_path, "assay.sqlite")
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("ASSAY")
    else:
        app.config.from_mapping(test_config)
    # Flask's own defaults hold these keys (SAMESITE as None), so setdefault would change nothing.
    # Lax keeps the session cookie off cross-site POSTs and subrequests; a setting of "Strict" is kept.
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True  # no script of ours reads it, so an injected one must not
    from .config import flag

    # Yes/no settings as booleans, or a one-line error at start: ASSAY_AUTH=off must not mean on.
    for key in ("AUTH", "WEBHOOK_ANY_HOST"):
        app.config[key] = flag(app.config, key)
    from .store.db import database_setting
    from .store.postgres import is_url

    app.config["DATABASE"] = database_setting(app.config["DATABASE"])  # refuses URLs of engines it cannot use
    # The instance folder holds the database, the secret key, caches of the items' texts and the media: a new one
    # is the operator's alone (as secret_key is).
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    # Caches and media live beside a SQLite file; with PostgreSQL, in the instance folder.
    beside = app.instance_path if is_url(app.config["DATABASE"]) else os.path.dirname(app.config["DATABASE"])
    app.config.setdefault("CACHE_DIR", os.path.join(beside, "cache"))
    # The content-hash cache of text embeddings, shared by every project of the instance.
    if not app.config.get("EMBEDDING_CACHE"):
        app.config["EMBEDDING_CACHE"] = (os.environ.get("ASSAY_EMBEDDING_CACHE")
                                         or os.path.join(app.config["CACHE_DIR"], "embeddings"))
    app.config.setdefault("MEDIA_DIR", os.path.join(beside, "media"))
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)

    from werkzeug.routing import IntegerConverter

    class SQLiteInt(IntegerConverter):
        """Path ids beyond SQLite's INTEGER range are simply not found (instead of overflowing)."""

        def __init__(self, map, **kwargs):
            kwargs.setdefault("max", SQLITE_MAX)
            super().__init__(map, **kwargs)

    app.url_map.converters["int"] = SQLiteInt
    from .store import db as dbmod

    if web:
        from .web import auth

        app.session_interface = auth.SessionCookies()
    from .learning.worker import RetrainService
    from .webhooks.policy import HostPolicy
    from .webhooks.sender import WebhookSender

    policy = HostPolicy.from_config(app.config)  # a malformed ASSAY_WEBHOOK_HOSTS stops the start, saying why
    database = dbmod.connect(app.config["DATABASE"])
    database.migrate()
    from . import store

    store.discard_dead_imports(database)
    app.extensions["assay.db"] = database
    sender = WebhookSender(database, policy,
                           timeout=float(app.config["WEBHOOK_TIMEOUT"]),
                           parallel=int(app.config["WEBHOOK_PARALLEL"]),
                           max_attempts=int(app.config["WEBHOOK_MAX_ATTEMPTS"]),
                           backoff=float(app.config["WEBHOOK_BACKOFF"]),
                           backoff_cap=float(app.config["WEBHOOK_BACKOFF_CAP"]))
    app.extensions["assay.webhooks"] = sender
    app.extensions["assay.retrain"] = RetrainService(
        database, app.config["CACHE_DIR"], app.config["MEDIA_DIR"], timeout=float(app.config["RETRAIN_TIMEOUT"]),
        settings={"k_samples": int(app.config["K_SAMPLES"]), "cv_folds": int(app.config["CV_FOLDS"]),
                  "seed": app.config["SEED"], "queue_depth": app.config["QUEUE_DEPTH"],
                  "embedding_cache": app.config["EMBEDDING_CACHE"], "min_ranked": int(app.config["MIN_RANKED"]),
                  "featurize_slice": float(app.config["FEATURIZE_SLICE"]),
                  "featurize_step": int(app.config["FEATURIZE_STEP"])},
        worker_threads=int(app.config["WORKER_THREADS"]), worker_nice=int(app.config["WORKER_NICE"]),
        on_events=sender.wake,
        workers=str(app.config["WORKERS"]),
    )
    if store.next_due(database) is not None:
        sender.start()  # deliveries left pending by the last run (or another process) go out now
    if web:
        from .web import accounts, api, guard, media, pages

        app.register_blueprint(api.bp)
        app.register_blueprint(pages.bp)
        app.register_blueprint(media.bp)
        app.register_blueprint(accounts.bp)
        guard.init_app(app)
        api.init_app(app)
    from . import cli

    cli.init_app(app)
    return app


def close_app(app: Flask, timeout: float = 30.0) -> None:
    """Shut an app down: stop and join its retrain thread and worker process and its webhook sender, then close
    its database. Deliveries not yet made stay in the outbox for the next start.

    The order matters: the dispatcher thread reads the database, and closing an SQLite connection
    while another thread uses it can crash the interpreter. If the thread does not stop in time the
    database is left open (and RuntimeError raised) rather than closed under it.
    """
    from .store.postgres import redacted

    service = app.extensions.get("assay.retrain")
    if service is not None and not service.shutdown(timeout):
        raise RuntimeError(f"the retrain thread of {redacted(app.config['DATABASE'])} did not stop within "
                           f"{timeout:g} s; its database was left open")
    sender = app.extensions.get("assay.webhooks")
    if sender is not None and not sender.shutdown(timeout):
        raise RuntimeError(f"the webhook sender of {redacted(app.config['DATABASE'])} did not stop within "
                           f"{timeout:g} s; its database was left open")
    database = app.extensions.get("assay.db")
    if database is not None:
        database.close()


def _instance_secret(instance_path: str) -> str:
    """A per-install secret kept in the instance folder, so sessions survive restarts."""
    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path) as fh:
            key = fh.read().strip()
            if key:
                return key
    except OSError:
        pass
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def __getattr__(name: str):
    # `from assay import Client` without loading the client for every server process that imports assay.
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
