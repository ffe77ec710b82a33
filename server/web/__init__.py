"""The web layer: the JSON API, the pages, login, media; all of it reads the app's one store handle."""
from __future__ import annotations

from flask import current_app


def get_db():
    """The app's store handle (an assay.store.Database): pass it to store functions."""
    return current_app.extensions["assay.db"]


def init_app(app) -> None:
    """Serve the pages and the API on ``app``: its requests, sessions, blueprints and guard."""
    # Here, not at the top: the views import numpy and scipy, which the commands that serve nothing never need.
    from . import accounts, api, auth, guard, media, pages, routing

    routing.init_app(app)
    # Items keep their fields in the file's order (a table's columns as the file has them); Flask would sort them.
    app.json.sort_keys = False
    app.session_interface = auth.SessionCookies()
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(media.bp)
    app.register_blueprint(accounts.bp)
    guard.init_app(app)
    api.init_app(app)
