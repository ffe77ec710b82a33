"""Assay's Flask app: ``create_app()`` builds it, ``assay`` (assay.cli) runs it."""
from __future__ import annotations

import os

from flask import Flask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# templates/ beside server/ in a checkout (and an editable install); inside the package once installed.
TEMPLATES = next((path for path in (os.path.join(ROOT, "templates"),
                                    os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))
                  if os.path.isdir(path)), os.path.join(ROOT, "templates"))


def create_app(test_config: dict | None = None, *, web: bool = True) -> Flask:
    """The app, idle: its config, its instance folder, its store handle and services (started by the process
    that runs on: assay.services), the pages and the API, the `assay` commands. ``web=False`` leaves out the
    pages and the API (the CLI's commands that serve nothing): their modules import numpy and scipy, most of a
    second of CPU that `assay export` would pay for nothing."""
    # Imported here, as flaskr does, so that `import assay` (for assay.Client) loads no store and no numpy.
    from . import cli, instance, services

    app = Flask(__name__, instance_path=os.environ.get("ASSAY_INSTANCE_PATH") or os.path.join(ROOT, "instance"),
                instance_relative_config=True, template_folder=TEMPLATES,
                static_folder=None)  # the pages blueprint serves web/static/ at /static
    instance.configure(app, test_config)
    services.init_app(app)
    if web:
        from . import web as web_layer

        web_layer.init_app(app)
    cli.init_app(app)
    return app


def close_app(app: Flask, timeout: float = 30.0) -> None:
    """Shut an app down: stop its retrain service and webhook sender, then close its database (assay.services)."""
    from . import services

    services.close(app, timeout)


def __getattr__(name: str):
    # `from assay import Client` without loading the client for every server process that imports assay.
    if name == "Client":
        from .client import Client

        return Client
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
