"""Webhook routes (owner only): register, list, delete, and the log of deliveries."""
from __future__ import annotations

from flask import current_app, jsonify, request

from assay import store
from assay.errors import BadRequest
from assay.web.auth import require
from assay.webhooks.policy import HostPolicy
from assay.webhooks.registration import register
from .base import SQLITE_MAX, bp, get_db, json_object

MAX_LOG = 500


@bp.post("/projects/<int:project_id>/webhooks")
def create_webhook(project_id: int):
    user = require("configure", project_id)
    db = get_db()
    store.get_project(db, project_id)
    hook = register(db, HostPolicy.from_config(current_app.config), project_id, json_object(), user.name)
    return jsonify(hook), 201


@bp.get("/projects/<int:project_id>/webhooks")
def list_webhooks(project_id: int):
    require("configure", project_id)
    db = get_db()
    store.get_project(db, project_id)
    return jsonify(store.list_webhooks(db, project_id))


@bp.delete("/projects/<int:project_id>/webhooks/<int:hook_id>")
def delete_webhook(project_id: int, hook_id: int):
    require("configure", project_id)
    db = get_db()
    store.get_project(db, project_id)
    return jsonify({"deleted": store.delete_webhook(db, project_id, hook_id)})


@bp.get("/projects/<int:project_id>/webhooks/deliveries")
def deliveries(project_id: int):
    """The latest deliveries, newest first, each with its attempts: the delivery log."""
    require("configure", project_id)
    db = get_db()
    store.get_project(db, project_id)
    try:
        limit = int(request.args.get("limit", 50))
        hook = int(request.args["hook"]) if request.args.get("hook") else None
    except ValueError:
        raise BadRequest("limit and hook must be integers") from None
    if not 1 <= limit <= MAX_LOG:
        raise BadRequest(f"limit must be between 1 and {MAX_LOG}")
    if hook is not None and not 1 <= hook <= SQLITE_MAX:
        raise BadRequest(f"hook must be a webhook id between 1 and {SQLITE_MAX}")
    if hook is not None:
        store.get_webhook(db, project_id, hook)
    return jsonify(store.delivery_log(db, project_id, limit, hook))
