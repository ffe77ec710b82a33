"""Agreement between annotators, the items they disagree on, and a reviewer's final word."""
from __future__ import annotations

from flask import jsonify, request

from .. import agreement, store
from ..auth import require
from ..errors import BadRequest
from . import bp, get_db, int_field, json_object


@bp.get("/projects/<int:project_id>/agreement")
def project_agreement(project_id: int):
    require("see_all_labels", project_id)
    conn = get_db().reader
    project = store.get_project(conn, project_id)
    summary = agreement.summarize(store.agreement_units(conn, project_id), project["labels"],
                                  project["multi_label"])
    summary.pop("disagreement_items")
    return jsonify(summary)


@bp.get("/projects/<int:project_id>/disagreements")
def disagreements(project_id: int):
    """Items whose annotators gave different labels, with every answer and any adjudication."""
    require("see_all_labels", project_id)
    conn = get_db().reader
    project = store.get_project(conn, project_id)
    try:
        limit = int(request.args.get("limit", 50))
    except ValueError:
        raise BadRequest("limit must be an integer") from None
    units = store.agreement_units(conn, project_id)
    ids = agreement.summarize(units, project["labels"], project["multi_label"])["disagreement_items"][:max(limit, 0)]
    answers = store.item_answers(conn, project_id, ids)
    data = store.item_data(conn, ids)
    out = []
    for item_id in ids:
        chosen = agreement.resolve(answers[item_id])
        out.append({"id": item_id, "data": data[item_id],
                    "annotations": [a for a in answers[item_id] if a["source"] == "annotator"],
                    "adjudicated": chosen["label"] if chosen and chosen["method"] == "adjudicated" else None,
                    "resolved": chosen["label"] if chosen else None})
    return jsonify(out)


@bp.post("/projects/<int:project_id>/reviews")
def adjudicate(project_id: int):
    """A reviewer's final label for an item; export uses it over the annotators' majority."""
    user = require("review", project_id)
    db = get_db()
    project = store.get_project(db.reader, project_id)
    body = json_object()
    item_id = int_field(body, "item_id")
    label = store.check_label(project, body.get("label"), body.get("labels"))
    annotation, _ = store.add_annotation(db, project_id, item_id, user.name, label, False, source="review")
    return jsonify({"item_id": item_id, "label": annotation["label"], "reviewer": user.name}), 201
