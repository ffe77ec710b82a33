"""The JSON API: one blueprint (assay.web.api.base), whose routes the modules below register on import."""
from __future__ import annotations

from .base import bp, init_app  # noqa: F401  (create_app registers both)
from . import annotate, items, openapi, operator, projects, review, transfer, webhooks  # noqa: F401  (routes register on bp)
