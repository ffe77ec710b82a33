"""Project routes: create, list, show, change, stats, retrain, delete (the project or some of its items)."""
from __future__ import annotations

from flask import current_app, jsonify, request

from assay import plugins, store
from assay.domain import projects
from assay.web.auth import current_user, require
from assay.errors import BadRequest, Forbidden
from assay.domain.stats import project_stats
from .base import bp, get_db, get_retrain, json_object


@bp.post("/projects")
def create_project():
    db = get_db()
    user = current_user()
    if not user.is_admin:
        raise Forbidden(f"{user.name} may not create projects; that needs the owner role on all projects")
    project_id = projects.create(db, json_object(), _load_policy())
    return jsonify({"id": project_id}), 201


def _load_policy() -> plugins.LoadPolicy:
    # A web user picks among the code the operator registered; only the CLI names any import path.
    return plugins.LoadPolicy.from_config(current_app.config)


@bp.get("/projects")
def list_projects():
    db = get_db()
    user = current_user()
    return jsonify([projects.public(p, db) for p in store.list_projects(db) if user.may("view", p["id"])])


@bp.get("/projects/<int:project_id>")
def show_project(project_id: int):
    require("view", project_id)
    db = get_db()
    return jsonify(projects.public(store.get_project(db, project_id), db))


@bp.patch("/projects/<int:project_id>")
def update_project(project_id: int):
    require("configure", project_id)
    db = get_db()
    project = projects.update(db, store.get_project(db, project_id), json_object(), _load_policy())
    return jsonify(projects.public(project, db))


@bp.get("/projects/<int:project_id>/stats")
def stats(project_id: int):
    user = require("view", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    out = project_stats(db, project, get_retrain())
    if not user.may("see_all_labels", project_id):
        # An annotator sees the project's progress and their own count, not other people's.
        out["annotators"] = {k: v for k, v in out["annotators"].items() if k == user.name}
    return jsonify(out)


@bp.post("/projects/<int:project_id>/retrain")
def retrain(project_id: int):
    """Start a retrain now (the loop also starts them by itself every retrain_every labels)."""
    require("configure", project_id)
    store.get_project(get_db(), project_id)
    get_retrain().retrain_now(project_id)
    return jsonify({"retraining": True}), 202


@bp.delete("/projects/<int:project_id>")
def delete_project(project_id: int):
    """Delete a project and all of it. ``?confirm=<its name>`` guards against a slip of the id."""
    require("configure", project_id)
    db = get_db()
    project = store.get_project(db, project_id)
    if request.args.get("confirm") != project["name"]:
        raise BadRequest(f"deleting project {project_id} removes its items and every label for good; "
                         f"add ?confirm={project['name']} (its name) to confirm, after exporting what you need")
    return jsonify(projects.delete(db, project, cache_root=current_app.config["CACHE_DIR"],
                                   media_root=current_app.config["MEDIA_DIR"]))


@bp.delete("/projects/<int:project_id>/items/<int:item_id>")
def delete_item(project_id: int, item_id: int):
    """Delete one item; one that carries labels only with ``?with_labels=true``."""
    require("configure", project_id)
    return _delete_items(project_id, [item_id], request.args.get("with_labels", "false") == "true")


@bp.post("/projects/<int:project_id>/items/delete")
def delete_items(project_id: int):
    """Delete several items at once: ``{"ids": [...], "with_labels": false}``; all or none."""
    require("configure", project_id)
    body = json_object()
    return _delete_items(project_id, body.get("ids"), body.get("with_labels", False))


def _delete_items(project_id: int, item_ids, with_labels):
    db = get_db()
    project = store.get_project(db, project_id)
    return jsonify(projects.delete_items(db, project, item_ids, with_labels=with_labels,
                                         cache_root=current_app.config["CACHE_DIR"]))
