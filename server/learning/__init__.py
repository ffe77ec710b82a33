"""The learning loop: when to retrain, the worker that does it, and the round it runs."""
from __future__ import annotations

from assay import store


def maybe_retrain(service, db, project: dict) -> bool:
    """Start a retrain if ``retrain_every`` labels arrived since the last model version.

    Also starts the first job of a project (featurizing and the cold-start queue)
    once it has items. Returns whether one was requested.
    """
    if service.busy(project["id"]) or not wants_retrain(db, project):
        return False
    service.request(project["id"])
    return True


def wants_retrain(db, project: dict) -> bool:
    """Whether the project has items and no model yet, or ``retrain_every`` labels beyond its last version."""
    last = store.latest_version(db, project["id"])
    counts = store.counts(db, project["id"])
    if counts["total"] == 0:
        return False
    return last is None or counts["labeled"] - last["n_labels"] >= int(project["retrain_every"])
