"""Checks every request passes before its view runs: identity, CSRF, rate limit."""
from __future__ import annotations

import threading
import time

from flask import redirect, request, url_for

from . import auth
from .errors import TooManyRequests, Unauthorized

OPEN_PATHS = ("/login", "/static/", "/api/openapi.json")


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second on average, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float):
        self.rate = float(rate)
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if the request may proceed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 100_000:  # forget idle clients rather than grow without bound
                self._buckets.clear()
            return (1 - tokens) / self.rate


def init_app(app):
    limiter = RateLimiter(app.config["RATE_LIMIT"], app.config["RATE_BURST"]) if app.config.get("RATE_LIMIT") else None
    app.extensions["assay.ratelimit"] = limiter

    @app.before_request
    def _guard():
        path = request.path
        try:
            user = auth.resolve_user()
            refused = None
        except Unauthorized as exc:
            user, refused = None, exc
        if limiter is not None:
            # A bucket per known user; everyone else (a wrong token included) shares their address's bucket,
            # so inventing a new token per request buys nothing.
            if user is not None and user.via != "local":
                key = f"user:{user.id}"
            else:
                key = f"addr:{request.remote_addr}:{user.name if user is not None else ''}"
            wait = limiter.take(key)
            if wait > 0:
                exc = TooManyRequests(f"too many requests; slow down and retry in {wait:.1f} s "
                                      f"(limit {limiter.rate:g}/s, set by ASSAY_RATE_LIMIT)")
                exc.retry_after = wait
                raise exc
        if path.startswith(OPEN_PATHS):
            return None
        if refused is not None:
            raise refused
        if user is None:
            if path.startswith("/api/"):
                auth.current_user()  # raises 401 with a message
            return redirect(url_for("accounts.login", next=request.full_path if request.query_string else path))
        auth.check_csrf()
        return None
