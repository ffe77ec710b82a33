"""POST /api/operator/importable: can this server's Python import a model's module? Asked by the operator's CLI.

`assay create-project --model pkg.mod:factory` imports the model in the CLI's own process, whose
``sys.path`` may differ from the running server's (a PYTHONPATH exported after `assay serve` started).
The CLI asks here so that it can warn before the first retrain fails. Only the operator may ask: the
request must carry the token the server wrote into the instance folder (assay.running), which no web
user can read; and nothing is imported, the finders are only asked where the module would come from
(assay.plugins.unfindable), so no code runs whoever asks.
"""
from __future__ import annotations

import hmac

from flask import current_app, jsonify, request

from assay import plugins
from assay.errors import BadRequest, Forbidden
from assay.running import HEADER
from . import bp, json_object


@bp.post("/operator/importable")
def importable():
    token = current_app.extensions.get("assay.operator_token")
    given = request.headers.get(HEADER, "")
    if not token or not hmac.compare_digest(given.encode(), token.encode()):
        raise Forbidden(f"only the operator's `assay` commands may ask this (they send the {HEADER} header "
                        "with the token the server wrote into its instance folder)")
    body = json_object()
    spec = body.get("spec")
    if body.get("kind") not in ("model", "featurizer") or not isinstance(spec, str) or not spec.strip():
        raise BadRequest('send {"kind": "model" or "featurizer", "spec": "package.module:factory"}')
    # Built-ins and entry points come with the installed packages the server shares with the CLI.
    error = plugins.unfindable(spec) if plugins.is_import_path(spec) else None
    return jsonify({"importable": error is None, "error": error})
