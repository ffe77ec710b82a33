"""The learning loop: when to retrain, the worker that does it, and the round it runs."""
from __future__ import annotations

from .. import store


def maybe_retrain(service, conn, project: dict) -> bool:
    """Start a retrain if ``retrain_every`` labels arrived since the last model version.

    Also starts the first job of a project (featurizing and the cold-start queue)
    once it has items. Returns whether one was requested.
    """
    project_id = project["id"]
    if service.busy(project_id):
        return False
    last = store.latest_version(conn, project_id)
    counts = store.counts(conn, project_id)
    if counts["total"] == 0:
        return False
    if last is None or counts["labeled"] - last["n_labels"] >= int(project["retrain_every"]):
        service.request(project_id)
        return True
    return False
