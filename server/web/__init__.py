"""The web layer: the JSON API, the pages, login, media; all of it reads the app's one store handle."""
from __future__ import annotations

from flask import current_app


def get_db():
    """The app's store handle (an assay.store.Database): pass it to store functions."""
    return current_app.extensions["assay.db"]
