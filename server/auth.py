"""Who is making a request.

With authentication off (the default for a local, loopback-only install) every
request acts as the local user; an ``X-Assay-Annotator`` header lets scripts
and tests act as several annotators.
"""
from __future__ import annotations

import re

from flask import request

from .errors import BadRequest

LOCAL_USER = "local"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def current_annotator() -> str:
    name = request.headers.get("X-Assay-Annotator")
    if not name:
        return LOCAL_USER
    if not _NAME.match(name):
        raise BadRequest("X-Assay-Annotator must be 1-64 letters, digits or _.@-")
    return name
