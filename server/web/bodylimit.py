"""Refusing a request body over its route's limit before reading it, in the server (waitress).

Waitress reads a whole request body, into memory or a temporary file, before it hands the request to the
app, so Flask's own size check came too late: a 200 MiB ``POST /login`` was read in full (6.6 s of a thread)
and only then refused, and a 300 MiB upload left a 250 MiB temporary file. So the server's parser asks, as
soon as a request's head is in, which route it goes to and that route's limit (``ASSAY_MAX_JSON_BYTES``;
``ASSAY_MAX_CONTENT_LENGTH`` for imports: :data:`assay.web.routing.UPLOAD_ENDPOINTS`, as the app decides), answers 413
to a declared body over it without reading a byte of it, and cuts a chunked body off once it passes it.
The app keeps its own check: it is what a server other than ``assay serve`` has.
"""
from __future__ import annotations

import functools

from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.utilities import RequestEntityTooLarge

from .routing import UPLOAD_ENDPOINTS


def body_limit(app, method: str, path: str) -> tuple[int | None, str]:
    """(bytes, setting) a request's body may have on the route ``method path`` goes to."""
    try:
        endpoint, _ = app.url_map.bind("localhost").match(path, method=method)
    except Exception:  # no such route (404, 405, a redirect): the app answers without wanting a body
        endpoint = None
    setting = "MAX_CONTENT_LENGTH" if endpoint in UPLOAD_ENDPOINTS else "MAX_JSON_BYTES"
    limit = app.config.get(setting)
    return (int(limit) if limit is not None else None), setting


class _Adjusted:
    """The server's settings, with one request's body limit."""

    def __init__(self, adj, max_request_body_size: int):
        self._adj = adj
        self.max_request_body_size = max_request_body_size

    def __getattr__(self, name):
        return getattr(self._adj, name)


class LimitedParser(HTTPRequestParser):
    """Waitress's request parser, with the body limit of the request's route."""

    def __init__(self, adj, app):
        super().__init__(adj)
        self._app = app
        self._limit: tuple[int, str] | None = None

    def parse_header(self, header_plus):
        super().parse_header(header_plus)
        limit, setting = body_limit(self._app, self.command, self.path)
        if limit is not None:
            self._limit = (limit, setting)
            # Waitress refuses a body of max_request_body_size bytes or more: one of exactly the limit may come.
            self.adj = _Adjusted(self.adj, min(self.adj.max_request_body_size, limit + 1))

    def received(self, data):
        consumed = super().received(data)
        if isinstance(self.error, RequestEntityTooLarge) and self._limit is not None:
            limit, setting = self._limit
            self.error = RequestEntityTooLarge(
                f"the request body is larger than {limit} bytes, the limit of this route (ASSAY_{setting}); "
                "it was refused before it was read")
            self.expect_continue = False  # no "100 Continue": the client must not start sending it
            self._limit = None  # the message is made once
        return consumed


def limit_bodies(server, app) -> None:
    """Make a server from ``waitress.create_server`` refuse bodies over their route's limit (in the Flask ``app``,
    which the server may serve wrapped) before reading them."""

    class LimitedChannel(HTTPChannel):
        parser_class = functools.partial(LimitedParser, app=app)

    servers = server.map.values() if isinstance(server, MultiSocketServer) else [server]
    for each in servers:
        if isinstance(each, BaseWSGIServer):
            each.channel_class = LimitedChannel
