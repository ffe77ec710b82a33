"""The JSON API under /api. Every error it returns is JSON: {"error": message, "status": code}."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from assay.errors import AssayError, BadRequest
from assay.domain.ingest import TOO_DEEP
from assay.domain.settings import SQLITE_MAX
from assay.web import get_db  # noqa: F401  (the route modules take it from here)

bp = Blueprint("api", __name__, url_prefix="/api")


def get_retrain():
    return current_app.extensions["assay.retrain"]


def get_webhooks():
    return current_app.extensions["assay.webhooks"]


def json_body() -> dict | list:
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # the parser recurses per level: [[[[...]]]] 100,000 deep exhausts the stack
        raise BadRequest(TOO_DEEP.format(what="the JSON body")) from None
    if data is None:
        raise BadRequest("the request body must be JSON (Content-Type: application/json)")
    return data


def int_field(body: dict, name: str, *, required: bool = True, minimum: int = 0) -> int | None:
    """An integer field of a JSON body, within SQLite's INTEGER range."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= SQLITE_MAX:
        raise BadRequest(f"{name} must be an integer between {minimum} and {SQLITE_MAX}")
    return value


def json_object() -> dict:
    data = json_body()
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def init_app(app):
    @app.errorhandler(AssayError)
    def _assay_error(exc: AssayError):
        headers = {}
        if getattr(exc, "retry_after", None):
            headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="assay"'
        if request.path.startswith("/api/"):
            return jsonify(exc.to_dict()), exc.status, headers
        from assay.web.pages import error_page

        return error_page(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        message = exc.description or exc.name
        if exc.code == 413:
            setting = getattr(request, "size_setting", "MAX_CONTENT_LENGTH")
            message = (f"the request body is larger than the limit of {request.max_content_length} bytes "
                       f"for this route (setting ASSAY_{setting})")
        if request.path.startswith("/api/"):
            return jsonify({"error": message, "status": exc.code}), exc.code
        from assay.web.pages import error_page

        return error_page(exc.code, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # Never leak a stack trace to the client; it goes to the server log.
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        message = "internal error; the server log has the details"
        if request.path.startswith("/api/"):
            return jsonify({"error": message, "status": 500}), 500
        from assay.web.pages import error_page

        return error_page(500, message)
