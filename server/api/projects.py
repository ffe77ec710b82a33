"""Project routes: create, list, show, change, stats."""
from __future__ import annotations

from flask import jsonify

from .. import projects, store
from ..learning import maybe_retrain
from ..stats import project_stats
from . import bp, get_db, get_retrain, json_object


@bp.post("/projects")
def create_project():
    db = get_db()
    project_id = projects.create(db, json_object())
    return jsonify({"id": project_id}), 201


@bp.get("/projects")
def list_projects():
    conn = get_db().reader
    return jsonify([projects.public(p, conn) for p in store.list_projects(conn)])


@bp.get("/projects/<int:project_id>")
def show_project(project_id: int):
    conn = get_db().reader
    return jsonify(projects.public(store.get_project(conn, project_id), conn))


@bp.patch("/projects/<int:project_id>")
def update_project(project_id: int):
    db = get_db()
    project = projects.update(db, store.get_project(db.reader, project_id), json_object())
    return jsonify(projects.public(project, db.reader))


@bp.get("/projects/<int:project_id>/stats")
def stats(project_id: int):
    db = get_db()
    project = store.get_project(db.reader, project_id)
    return jsonify(project_stats(db.reader, project, get_retrain()))


@bp.post("/projects/<int:project_id>/retrain")
def retrain(project_id: int):
    """Start a retrain now (the loop also starts them by itself every retrain_every labels)."""
    db = get_db()
    project = store.get_project(db.reader, project_id)
    service = get_retrain()
    if not maybe_retrain(service, db.reader, project) and not service.busy(project_id):
        service.request(project_id)
    return jsonify({"retraining": True}), 202
