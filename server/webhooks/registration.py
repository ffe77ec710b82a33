"""Registering a webhook: what its URL, events and secret must be."""
from __future__ import annotations

import secrets

from assay import store
from assay.errors import BadRequest
from .events import EVENTS
from .policy import HostPolicy, parse

SECRET_MIN = 16
SECRET_MAX = 256
MAX_HOOKS = 20  # per project: each event is posted once per webhook


def register(db, policy: HostPolicy, project_id: int, body: dict, created_by: str | None) -> dict:
    """Check ``{"url", "events", "secret"}`` and store the webhook. Returns it as listed, plus ``secret`` when
    the server made one up (the only time it is ever shown)."""
    unknown = set(body) - {"url", "events", "secret"}
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(sorted(unknown))}; a webhook takes url, events and secret")
    target = parse(body.get("url"))
    policy.addresses(target)  # the host and what it resolves to now; checked again before every attempt
    events = body.get("events")
    if (not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events)
            or set(events) - set(EVENTS)):
        raise BadRequest(f"events must be a non-empty list of: {', '.join(EVENTS)}")
    secret = body.get("secret")
    made_up = secret is None
    if made_up:
        secret = secrets.token_hex(32)
    elif not isinstance(secret, str) or not SECRET_MIN <= len(secret) <= SECRET_MAX:
        raise BadRequest(f"secret must be a string of {SECRET_MIN}-{SECRET_MAX} characters (the key of the "
                         "bodies' HMAC-SHA256 signature), or left out to have the server make one")
    if len(store.list_webhooks(db, project_id)) >= MAX_HOOKS:
        raise BadRequest(f"a project has at most {MAX_HOOKS} webhooks; delete one first")
    hook_id = store.create_webhook(db, project_id, target.url, list(dict.fromkeys(events)), secret, created_by)
    hook = next(h for h in store.list_webhooks(db, project_id) if h["id"] == hook_id)
    return {**hook, "secret": secret} if made_up else hook
