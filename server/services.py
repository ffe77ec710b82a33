"""An app's long-lived parts: its store handle, its webhook sender and its retrain service.

``create_app`` builds them idle (``init_app``): a handle that connects (and migrates the schema) on first use,
a sender and a retrain service with no thread yet. A process starts what it runs on: every `assay` command
undoes the imports a dead process left half-way (``open_database``); ``assay serve``, ``demo`` and ``worker``
also send the webhook deliveries the last run left pending (``start``). The retrain service starts its
dispatcher thread when the first job is asked for, and the sender its threads at the first delivery.
``close`` stops them all.
"""
from __future__ import annotations

from flask import Flask

from . import store
from .learning.worker import RetrainService
from .store.postgres import redacted
from .webhooks.policy import HostPolicy
from .webhooks.sender import WebhookSender


def init_app(app: Flask) -> None:
    """Build the app's store handle, webhook sender and retrain service, idle, into ``app.extensions``."""
    config = app.config
    policy = HostPolicy.from_config(config)  # a malformed ASSAY_WEBHOOK_HOSTS stops the start, saying why
    database = store.connect(config["DATABASE"])
    sender = WebhookSender(database, policy, timeout=float(config["WEBHOOK_TIMEOUT"]),
                           parallel=int(config["WEBHOOK_PARALLEL"]),
                           max_attempts=int(config["WEBHOOK_MAX_ATTEMPTS"]),
                           backoff=float(config["WEBHOOK_BACKOFF"]), backoff_cap=float(config["WEBHOOK_BACKOFF_CAP"]))
    retrain = RetrainService(database, config["CACHE_DIR"], config["MEDIA_DIR"],
                             timeout=float(config["RETRAIN_TIMEOUT"]), settings=retrain_settings(config),
                             worker_threads=int(config["WORKER_THREADS"]), worker_nice=int(config["WORKER_NICE"]),
                             on_events=sender.wake, workers=str(config["WORKERS"]))
    app.extensions.update({"assay.db": database, "assay.webhooks": sender, "assay.retrain": retrain})


def retrain_settings(config) -> dict:
    """What every retrain job of the app is given, from the app's config."""
    return {"k_samples": int(config["K_SAMPLES"]), "cv_folds": int(config["CV_FOLDS"]), "seed": config["SEED"],
            "queue_depth": config["QUEUE_DEPTH"], "embedding_cache": config["EMBEDDING_CACHE"],
            "min_ranked": int(config["MIN_RANKED"]), "featurize_slice": float(config["FEATURIZE_SLICE"]),
            "featurize_step": int(config["FEATURIZE_STEP"])}


def open_database(app: Flask) -> None:
    """What a process does before its command uses the database: bring the schema up to date now (an
    unreachable PostgreSQL stops it here, saying what to fix) and undo the imports whose process died."""
    database = app.extensions["assay.db"]
    database.migrate()
    store.discard_dead_imports(database)


def start(app: Flask) -> None:
    """For the processes that run on (serve, demo, worker): the deliveries left pending by the last run (or
    another process) go out now, not at the next label."""
    if store.next_due(app.extensions["assay.db"]) is not None:
        app.extensions["assay.webhooks"].start()


def close(app: Flask, timeout: float = 30.0) -> None:
    """Stop and join the retrain thread and worker process and the webhook sender, then close the database.
    Deliveries not yet made stay in the outbox for the next start.

    The order matters: the dispatcher thread reads the database, and closing an SQLite connection
    while another thread uses it can crash the interpreter. If the thread does not stop in time the
    database is left open (and RuntimeError raised) rather than closed under it.
    """
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
