"""An app's configuration: the defaults, then the instance folder's config.py and the ``ASSAY_`` environment
(or a test's mapping), and what follows from them: the database, the caches, the media, the secret key."""
from __future__ import annotations

import os
import secrets

from .config import flag
from .learning.defaults import K_SAMPLES
from .store.db import database_setting
from .store.postgres import is_url

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


def configure(app, test_config: dict | None = None) -> None:
    """Fill ``app.config``, and make the instance folder (the operator's alone) if it is new."""
    app.config.from_mapping(DEFAULTS)
    app.config["DATABASE"] = os.path.join(app.instance_path, "assay.sqlite")
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("ASSAY")
    else:
        app.config.from_mapping(test_config)
    _secure_cookies(app.config)
    # Yes/no settings as booleans, or a one-line error at start: ASSAY_AUTH=off must not mean on.
    for key in ("AUTH", "WEBHOOK_ANY_HOST"):
        app.config[key] = flag(app.config, key)
    app.config["DATABASE"] = database_setting(app.config["DATABASE"])  # refuses URLs of engines it cannot use
    # The instance folder holds the database, the secret key, caches of the items' texts and the media: a new one
    # is the operator's alone (as secret_key is).
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    _place_files(app.config, app.instance_path)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)


def _secure_cookies(config) -> None:
    # Flask's own defaults hold these keys (SAMESITE as None), so setdefault would change nothing.
    # Lax keeps the session cookie off cross-site POSTs and subrequests; a setting of "Strict" is kept.
    if not config.get("SESSION_COOKIE_SAMESITE"):
        config["SESSION_COOKIE_SAMESITE"] = "Lax"
    config["SESSION_COOKIE_HTTPONLY"] = True  # no script of ours reads it, so an injected one must not


def _place_files(config, instance_path: str) -> None:
    """Caches and media beside a SQLite file; with PostgreSQL, in the instance folder."""
    beside = instance_path if is_url(config["DATABASE"]) else os.path.dirname(config["DATABASE"])
    config.setdefault("CACHE_DIR", os.path.join(beside, "cache"))
    # The content-hash cache of text embeddings, shared by every project of the instance.
    if not config.get("EMBEDDING_CACHE"):
        config["EMBEDDING_CACHE"] = (os.environ.get("ASSAY_EMBEDDING_CACHE")
                                     or os.path.join(config["CACHE_DIR"], "embeddings"))
    config.setdefault("MEDIA_DIR", os.path.join(beside, "media"))


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
