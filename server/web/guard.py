"""Checks every request passes before its view runs: host, identity, CSRF, rate limit."""
from __future__ import annotations

import ipaddress
import threading
import time

from flask import current_app, redirect, request, url_for

from . import auth
from assay.errors import MisdirectedRequest, TooManyRequests, Unauthorized

# /api/operator/ checks its own token (the operator's CLI has no login): assay.web.api.operator.
OPEN_PATHS = ("/login", "/static/", "/api/openapi.json", "/api/operator/")
# The pages load only their own scripts, styles and images (the annotate page's config is a JSON
# <script> block, which the browser does not run, and bar widths are set from data-percent by bars.js),
# so nothing inline needs allowing, and an injected <script> or style="" would not run.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
                           "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


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


def host_name(host: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0].rstrip(".")


def is_loopback_name(name: str) -> bool:
    """Whether a host name means this machine by itself, without asking DNS: a DNS answer is exactly
    what a rebinding attacker controls."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    return bool(address.is_loopback or (address.version == 6 and address.ipv4_mapped
                                        and address.ipv4_mapped.is_loopback))


def allowed_hosts(config) -> set[str]:
    hosts = config.get("ALLOWED_HOSTS") or []
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    return {str(h).strip().lower().rstrip(".") for h in hosts if str(h).strip()}


def check_host() -> None:
    """Without accounts, answer only requests addressed to this machine by a loopback name (or a listed host).

    A web page on evil.example can make the browser resolve evil.example to 127.0.0.1 (DNS rebinding);
    its requests then reach us from the browser as same-origin, Origin and Host both evil.example, so the
    CSRF check cannot tell them apart. The Host header still names evil.example, and that is what we refuse.
    """
    if current_app.config.get("AUTH"):
        return
    host = request.host
    name = host_name(host)
    if is_loopback_name(name):
        return
    listed = allowed_hosts(current_app.config)
    if name in listed or host.lower() in listed:
        return
    raise MisdirectedRequest(
        f"this server does not answer for host {name!r}: with authentication off it answers only localhost "
        f"and loopback addresses. Add {name} to ASSAY_ALLOWED_HOSTS (comma-separated) if it names this "
        "machine, or turn on ASSAY_AUTH=true to serve other hosts.")


def security_headers(response):
    """What every response carries: no MIME sniffing (an uploaded "image" must not run as HTML), no framing
    (clickjacking of the label buttons), the CSP; and with accounts on, no copy in a shared cache."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if current_app.config.get("AUTH") and not request.path.startswith("/static/"):
        # Media, curves and pages are one user's view of one project; a proxy must not hand them to another.
        response.cache_control.public = False
        response.cache_control.private = True
    return response


def init_app(app):
    limiter = RateLimiter(app.config["RATE_LIMIT"], app.config["RATE_BURST"]) if app.config.get("RATE_LIMIT") else None
    app.extensions["assay.ratelimit"] = limiter
    from .lockout import LoginBackoff

    app.extensions["assay.logins"] = LoginBackoff(app.config["LOGIN_FAILURES_PER_NAME"],
                                                  app.config["LOGIN_FAILURES_PER_ADDRESS"],
                                                  cap=app.config["LOGIN_BACKOFF_CAP"])

    app.after_request(security_headers)

    @app.before_request
    def _guard():
        check_host()  # first: a rebound foreign page must learn nothing, not even whether it is rate limited
        path = request.path
        try:
            user = auth.resolve_user()
            refused = None
        except Unauthorized as exc:
            user, refused = None, exc
        if limiter is not None:
            # A bucket per known user; everyone else shares their address's bucket, so inventing a new
            # token, or with auth off a new X-Assay-Annotator name, per request buys nothing.
            if user is not None and user.via != "local":
                key = f"user:{user.id}"
            else:
                key = f"addr:{request.remote_addr}"
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
