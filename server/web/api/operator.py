"""The routes the operator's CLI asks a running server (assay.running); no web user may.

POST /api/operator/importable: can this server's Python import a model's module?

`assay create-project --model pkg.mod:factory` imports the model in the CLI's own process, whose
``sys.path`` may differ from the running server's (a PYTHONPATH exported after `assay serve` started).
The CLI asks here so that it can warn before the first retrain fails. Only the operator may ask: the
request must carry the token the server wrote into the instance folder (assay.running), which no web
user can read; and nothing is imported, the finders are only asked where the module would come from
(assay.plugins.unfindable), so no code runs whoever asks.

POST /api/operator/imported: `assay import` wrote items (and maybe seed labels) into the database this
server uses; it featurizes them and retrains, as after an upload over HTTP (assay.web.api.transfer).
"""
from __future__ import annotations

import hmac

from flask import current_app, jsonify, request

from assay import plugins, store
from assay.errors import BadRequest, Forbidden
from assay.running import HEADER
from .base import bp, get_db, get_retrain, int_field, json_object


def _operator_only() -> None:
    token = current_app.extensions.get("assay.operator_token")
    given = request.headers.get(HEADER, "")
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise Forbidden(f"only the operator's `assay` commands may ask this (they send the {HEADER} header "
                        "with the token the server wrote into its instance folder)")


@bp.post("/operator/imported")
def imported():
    _operator_only()
    project = store.get_project(get_db(), int_field(json_object(), "project_id", minimum=1))
    get_retrain().request(project["id"])
    return jsonify({"retrain": "requested"})


@bp.post("/operator/importable")
def importable():
    _operator_only()
    body = json_object()
    spec = body.get("spec")
    if body.get("kind") not in ("model", "featurizer") or not isinstance(spec, str) or not spec.strip():
        raise BadRequest('send {"kind": "model" or "featurizer", "spec": "package.module:factory"}')
    # Built-ins and entry points come with the installed packages the server shares with the CLI.
    error = plugins.unfindable(spec) if plugins.is_import_path(spec) else None
    return jsonify({"importable": error is None, "error": error})
