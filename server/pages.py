"""HTML pages: the project list, a project's overview, the annotate page."""
from __future__ import annotations

from flask import Blueprint, render_template_string

bp = Blueprint("pages", __name__, static_folder="static", static_url_path="/static")


def error_page(status: int, message: str):
    return render_template_string(
        "<!doctype html><title>Error {{ status }}</title><h1>Error {{ status }}</h1><p>{{ message }}</p>",
        status=status, message=message), status
