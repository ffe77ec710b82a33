"""A project's progress as numbers: what the stats route and the overview page show."""
from __future__ import annotations

from . import store
from .features import resolve


def project_stats(conn, project: dict, service=None) -> dict:
    project_id = project["id"]
    counts = store.counts(conn, project_id)
    versions = store.model_versions(conn, project_id)
    good = [v for v in versions if v["status"] == "ok"]
    last = versions[-1] if versions else None
    progress = service.progress(project_id) if service is not None else None
    featurizer, notice = resolve(project["item_type"], project.get("featurizer"))
    return {
        "labeled": counts["labeled"],
        "unlabeled": counts["unlabeled"],
        "skipped": counts["skipped"],
        "items": counts["total"],
        "model_version": good[-1]["version"] if good else None,
        "retraining": progress is not None,
        "retrain_progress": progress,
        "strategy": project["strategy"],
        "model": project["model"],
        # The featurizer in use (the project's choice, or the current default), and why, when it is a fallback.
        "featurizer": featurizer,
        "featurizer_notice": notice,
        "label_counts": store.label_counts(conn, project_id),
        "annotators": store.annotator_counts(conn, project_id),
        "last_error": last["error"] if last and last["status"] in ("failed", "timeout") else None,
        "history": [
            {k: v[k] for k in ("version", "status", "model", "strategy", "n_labels", "label_counts", "accuracy",
                               "accuracy_std", "accuracy_method", "fit_seconds", "acquire_seconds",
                               "total_seconds", "pool_size", "error", "created_at")}
            for v in versions
        ],
    }
