"""Finding items: search a project's items, and fetch one for the labeling page to re-open."""
from __future__ import annotations

from flask import jsonify, request

from assay import store
from assay.domain import search
from assay.errors import NotFound
from assay.web.auth import require
from .base import SQLITE_MAX, bp, get_db


@bp.get("/projects/<int:project_id>/items")
def search_items(project_id: int):
    """Items by text (``q``), ``label``, ``annotator`` and ``disagree=1`` (the model's prediction differs
    from the label), combined, a page at a time. Annotators see their own answers only."""
    user = require("view", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    query = search.ItemQuery.from_args(request.args, project)
    viewer = None if user.may("see_all_labels", project_id) else user.name
    return jsonify(search.search(db, project, query, viewer))


@bp.get("/projects/<int:project_id>/items/<int:item_id>")
def show_item(project_id: int, item_id: int):
    """One item as the labeling page re-opens it: data, this annotator's label, the model's prediction, and
    why they may not answer it now (``refusal``; null: they may)."""
    user = require("annotate", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    if item_id > SQLITE_MAX:
        raise NotFound(f"project {project_id} has no item {item_id}")
    return jsonify(search.reopen(db, project, item_id, user.name))
