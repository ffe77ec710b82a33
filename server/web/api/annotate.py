"""The labeling routes: pull the next items, answer one, undo an answer."""
from __future__ import annotations

from flask import current_app, jsonify, request

from assay import store
from assay.domain import serving
from assay.domain.labels import check_label
from assay.web.auth import require
from assay.errors import BadRequest
from assay.webhooks import events
from .base import SQLITE_MAX, bp, get_db, get_retrain, get_webhooks, int_field, json_object

MAX_PULL = 100


@bp.get("/projects/<int:project_id>/queue")
def queue(project_id: int):
    user = require("annotate", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    try:
        n = int(request.args.get("n", 5))
    except ValueError:
        raise BadRequest("n must be an integer") from None
    if not 1 <= n <= MAX_PULL:
        raise BadRequest(f"n must be between 1 and {MAX_PULL}")
    items = serving.pull_queue(db, project, user.name, n, float(current_app.config["LEASE_SECONDS"]))
    get_retrain().labels_arrived(project)
    return jsonify(items)


@bp.get("/projects/<int:project_id>/predictions")
def predictions(project_id: int):
    """The current queue's prediction for items a labeling page already holds (``?ids=1,2,3``).

    A page prefetches items; when a new model lands it asks again, so the items it shows
    carry the newest model's prediction. Items the queue does not hold are left out.
    """
    require("annotate", project_id)
    db = get_db()
    store.get_project(db, project_id)
    try:
        ids = [int(part) for part in request.args.get("ids", "").split(",") if part.strip()]
    except ValueError:
        raise BadRequest("ids must be item ids separated by commas") from None
    if len(ids) > 2 * MAX_PULL:
        raise BadRequest(f"ask for at most {2 * MAX_PULL} ids at once")
    if not all(0 < i <= SQLITE_MAX for i in ids):
        raise BadRequest(f"ids must be between 1 and {SQLITE_MAX}")
    found = store.queue_predictions(db, project_id, ids)
    return jsonify({"items": {str(i): found[i] for i in ids if i in found}})


@bp.post("/projects/<int:project_id>/annotations")
def annotate(project_id: int):
    user = require("annotate", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    body = json_object()
    if isinstance(body.get("item_id"), bool) or not isinstance(body.get("item_id"), int):
        raise BadRequest("item_id must be the integer id of an item (the \"id\" the queue returned)")
    item_id = int_field(body, "item_id")
    skipped = body.get("skip", False)
    if not isinstance(skipped, bool):
        raise BadRequest("skip must be true or false")
    if skipped:
        if "label" in body or "labels" in body:
            raise BadRequest("give either skip or a label, not both")
        label = None
    else:
        if "label" not in body and "labels" not in body:
            raise BadRequest("give \"label\" (or \"labels\" for multi-label, or \"skip\": true)")
        label = check_label(project, body.get("label"), body.get("labels"))
    suggested, accepted = _suggestion(project, body, label)
    duration = int_field(body, "duration_ms", required=False)
    key = body.get("idempotency_key") or request.headers.get("Idempotency-Key")
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 200):
        raise BadRequest("idempotency_key must be a string of 1-200 characters")
    with db.write() as tx:  # the answer and its webhook deliveries: committed together or not at all
        annotation, created = store.add_annotation(db, project_id, item_id, user.name, label, skipped,
                                                   duration_ms=duration, idempotency_key=key,
                                                   overlap=int(project["overlap"]), twins=True,
                                                   suggested=suggested, accepted=accepted)
        hooked = events.annotation_created(tx, project_id, annotation) if created else 0
    if hooked:
        get_webhooks().wake()  # posting happens on the sender's thread; this request does not wait for it
    # The label is committed; starting a retrain only enqueues work for the background worker.
    get_retrain().labels_arrived(project)
    return jsonify({**_public(annotation), "duplicate": not created}), 201 if created else 200


@bp.delete("/projects/<int:project_id>/annotations/<int:item_id>")
def undo(project_id: int, item_id: int):
    user = require("annotate", project_id)
    db = get_db()
    store.get_project(db, project_id)
    annotation = store.undo_annotation(db, project_id, item_id, user.name, twins=True)
    return jsonify({"undone": _public(annotation)})


def _suggestion(project: dict, body: dict, label) -> tuple[str | None, bool | None]:
    """``suggested`` (the label the page showed as the model's first guess; absent: none shown), checked, and
    whether the answer took it (``accepted``: the label is the suggestion; a client may send it, and it must agree)."""
    suggested, accepted = body.get("suggested"), body.get("accepted")
    if suggested is None:
        if accepted is not None:
            raise BadRequest("accepted needs suggested: the label that was suggested")
        return None, None
    if not isinstance(suggested, str) or suggested not in project["labels"]:
        raise BadRequest("suggested must be one of the project's labels (the suggestion shown)")
    if accepted is not None and not isinstance(accepted, bool):
        raise BadRequest("accepted must be true or false")
    if accepted is not None and accepted != (label == suggested):
        raise BadRequest("accepted must say whether the label is the suggested one")
    return suggested, label == suggested


def _public(annotation: dict) -> dict:
    return {k: annotation[k] for k in ("id", "item_id", "annotator", "label", "skipped", "created_at")}
