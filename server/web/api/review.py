"""Agreement between annotators, the items they disagree on, and a reviewer's final word."""
from __future__ import annotations

from flask import jsonify, request

from assay.domain import reviewing
from assay.domain.labels import check_label
from assay import store
from assay.web.auth import require
from assay.errors import BadRequest
from .base import bp, get_db, int_field, json_object


@bp.get("/projects/<int:project_id>/agreement")
def project_agreement(project_id: int):
    require("see_all_labels", project_id)
    db = get_db()
    out = reviewing.summary(db, store.get_project(db, project_id))
    out.pop("disagreement_items")
    return jsonify(out)


@bp.get("/projects/<int:project_id>/disagreements")
def disagreements(project_id: int):
    """Items whose annotators gave different labels, with every answer and any adjudication."""
    require("see_all_labels", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    try:
        limit = max(int(request.args.get("limit", 50)), 0)
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    ids = reviewing.summary(db, project)["disagreement_items"][:limit]
    return jsonify(reviewing.disputed(db, project, ids))


@bp.post("/projects/<int:project_id>/reviews")
def adjudicate(project_id: int):
    """A reviewer's final label for an item; export uses it over the annotators' majority."""
    user = require("review", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    body = json_object()
    item_id = int_field(body, "item_id")
    label = check_label(project, body.get("label"), body.get("labels"))
    annotation, _ = store.add_annotation(db, project_id, item_id, user.name, label, False, source="review")
    return jsonify({"item_id": item_id, "label": annotation["label"], "reviewer": user.name}), 201
