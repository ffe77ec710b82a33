"""What holds for a request before its view runs: the body its route may have, and ids SQLite can hold."""
from __future__ import annotations

from flask import Request, current_app
from werkzeug.routing import IntegerConverter

from assay.domain.settings import SQLITE_MAX

# Routes that take files; every other one reads small JSON or forms, so one annotator posting
# a 20 MB "label" is refused instead of growing the server by hundreds of MB.
UPLOAD_ENDPOINTS = frozenset({"api.import_items"})


class AssayRequest(Request):
    @property
    def size_setting(self) -> str:
        """The config key that limits this request's body."""
        return "MAX_CONTENT_LENGTH" if self.endpoint in UPLOAD_ENDPOINTS else "MAX_JSON_BYTES"

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None or not current_app:
            return super().max_content_length
        limit = current_app.config.get(self.size_setting)
        return int(limit) if limit is not None else None

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


class SQLiteInt(IntegerConverter):
    """Path ids beyond SQLite's INTEGER range are simply not found (instead of overflowing)."""

    def __init__(self, map, **kwargs):
        kwargs.setdefault("max", SQLITE_MAX)
        super().__init__(map, **kwargs)


def init_app(app) -> None:
    app.request_class = AssayRequest
    app.url_map.converters["int"] = SQLiteInt
