"""The events a webhook can take, their bodies, and how they enter the outbox.

Every function here runs inside the caller's open write (``tx``), the one that records the event itself,
so an answer or a model version and its deliveries are committed together or not at all.
"""
from __future__ import annotations

import datetime
import json
import math
import time
import uuid

from assay import store

ANNOTATION_CREATED = "annotation.created"
MODEL_TRAINED = "model.trained"
MODEL_FAILED = "model.failed"
STOP_SIGNAL = "project.stop_signal"
EVENTS = (ANNOTATION_CREATED, MODEL_TRAINED, MODEL_FAILED, STOP_SIGNAL)

ANNOTATION_FIELDS = ("id", "item_id", "annotator", "label", "skipped", "duration_ms", "created_at")
VERSION_FIELDS = ("version", "status", "model", "strategy", "n_labels", "label_counts", "pool_size", "accuracy",
                  "accuracy_std", "accuracy_method", "estimate", "estimate_low", "estimate_high", "kappa",
                  "stop_signal", "fit_seconds", "acquire_seconds", "total_seconds", "created_at")
FAILED_STATUSES = ("failed", "timeout")


def record(tx, project_id: int, event: str, payload: dict) -> int:
    """One outbox row per webhook of the project that takes ``event``; returns how many.

    The body is fixed here, so every attempt posts the same bytes with the same delivery id: a receiver
    that got a delivery whose answer was lost can recognize the retry.
    """
    hooks = store.subscribed_hooks(tx, project_id, event)
    if not hooks:
        return 0
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    now = time.time()
    rows = []
    for hook_id in hooks:
        delivery = uuid.uuid4().hex
        body = json.dumps({"event": event, "delivery_id": delivery, "project_id": project_id, "timestamp": stamp,
                           "data": payload}, separators=(",", ":"), allow_nan=False, default=str)
        rows.append({"hook_id": hook_id, "project_id": project_id, "event": event, "delivery_id": delivery,
                     "body": body, "next_attempt_at": now})
    store.add_deliveries(tx, rows)
    return len(rows)


def annotation_created(tx, project_id: int, annotation: dict) -> int:
    """An annotator's answer (a label, labels or a skip), with the item's own id from the import."""
    payload = {k: annotation.get(k) for k in ANNOTATION_FIELDS}
    payload["item_external_id"] = store.external_ids(tx, [annotation["item_id"]]).get(annotation["item_id"])
    return record(tx, project_id, ANNOTATION_CREATED, payload)


def version_recorded(tx, project_id: int, number: int) -> int:
    """The events of the model version just recorded as ``number``: trained or failed, and the stop signal
    when this version turns it on (the previous trained version did not have it)."""
    versions = store.model_versions(tx, project_id)
    this = next((v for v in versions if v["version"] == number), None)
    if this is None:
        return 0
    sent = 0
    if this["status"] == "ok":
        sent += record(tx, project_id, MODEL_TRAINED, _finite({v: this.get(v) for v in VERSION_FIELDS}))
        before = [v for v in versions if v["version"] < number and v["status"] == "ok"]
        if this.get("stop_signal") and not (before and before[-1].get("stop_signal")):
            stopping = (this.get("evaluation") or {}).get("stopping") or {}
            sent += record(tx, project_id, STOP_SIGNAL, _finite({
                "version": number, "n_labels": this["n_labels"], "signal": True, "kappa": this.get("kappa"),
                "estimate": this.get("estimate"), "estimate_low": this.get("estimate_low"),
                "estimate_high": this.get("estimate_high"), **stopping}))
    elif this["status"] in FAILED_STATUSES:
        sent += record(tx, project_id, MODEL_FAILED, {
            "version": number, "status": this["status"], "model": this["model"], "strategy": this["strategy"],
            "n_labels": this["n_labels"], "error": this.get("error"), "created_at": this.get("created_at")})
    return sent


def _finite(payload: dict) -> dict:
    # JSON has no NaN or infinity: a metric that could not be computed goes as null.
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in payload.items()}
