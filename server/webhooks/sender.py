"""The thread that posts the outbox: signed, one attempt at a time, with exponential backoff, never redirected.

Requests never wait on it: they only write outbox rows (assay.webhooks.events) and :meth:`WebhookSender.wake`
it. Rows stay in the database until delivered or given up, so a restart loses nothing: a new sender takes
up what is pending. A delivery is claimed in the database while it is tried, so two processes sharing a
database (the server and a CLI command) never post it twice at once.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import socket
import ssl
import threading
import time
import weakref

from assay import store
from .policy import HostPolicy, Refused, parse

log = logging.getLogger(__name__)
THREAD_NAME = "assay-webhooks"
USER_AGENT = "Assay-Webhooks/1"
SIGNATURE_HEADER = "X-Assay-Signature"
CLAIM = 10  # deliveries taken at a time
_SENDERS: "weakref.WeakSet[WebhookSender]" = weakref.WeakSet()


def live_senders() -> list["WebhookSender"]:
    return list(_SENDERS)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Assay-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the raw body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): base, 2 base, 4 base, ... up to cap."""
    return min(cap, base * 2 ** (attempt - 1))


class _Aborted(Exception):
    """The sender was stopped in the middle of an attempt: it counts for nothing."""


class _PinnedHTTP(http.client.HTTPConnection):
    """A connection to one checked address, whatever the host name would resolve to by now."""

    def __init__(self, target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address connected to.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class WebhookSender:
    def __init__(self, db, policy: HostPolicy, *, timeout: float = 10.0, max_attempts: int = 15,
                 backoff: float = 1.0, backoff_cap: float = 3600.0, poll: float = 2.0):
        self.db = db
        self.policy = policy
        self.timeout = float(timeout)
        self.max_attempts = max(1, int(max_attempts))
        self.backoff = float(backoff)
        self.backoff_cap = float(backoff_cap)
        # Rows another process wrote (or whose claim ran out) are seen within this many seconds.
        self.poll = float(poll)
        self._cond = threading.Condition()
        self._woken = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._conn: http.client.HTTPConnection | None = None  # the attempt in progress, for shutdown to cut
        self.attempts_made = 0
        _SENDERS.add(self)

    # -- called from other threads --------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._stopped or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """New deliveries were committed: look now instead of at the next poll."""
        self.start()
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop for good and join the thread. An attempt in progress is cut off and its delivery left pending
        for the next start; returns whether the thread is gone (only then may the database be closed)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            thread, conn = self._thread, self._conn
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.error("the webhook sender thread did not stop within %g s", timeout)
                return False
        return True

    def alive(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # -- the sender thread ------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopped:
            try:
                # Claimed for as long as trying them all could take, so no other process takes one meanwhile.
                rows = store.claim_deliveries(self.db, time.time(), claim_seconds=CLAIM * self.timeout + 30.0,
                                              limit=CLAIM)
                for n, row in enumerate(rows):
                    if self._stopped:
                        for left in rows[n:]:
                            store.release_claim(self.db, left["id"])
                        return
                    self._attempt(row)
                if rows:
                    continue
                due = store.next_due(self.db)
            except Exception:  # the sender must survive anything; the rows stay for the next round
                log.exception("the webhook sender failed; trying again in %g s", self.poll)
                due = None
            wait = self.poll if due is None else min(self.poll, max(0.05, due - time.time()))
            with self._cond:
                if not self._woken and not self._stopped:
                    self._cond.wait(wait)
                self._woken = False

    def _attempt(self, row: dict) -> None:
        attempt = int(row["attempts"]) + 1
        started = time.perf_counter()
        try:
            status, error = self._post(row)
        except _Aborted:
            store.release_claim(self.db, row["id"])
            return
        took = round(1000 * (time.perf_counter() - started))
        self.attempts_made += 1
        if error is None:
            store.record_attempt(self.db, row["id"], attempt, status, None, took, "delivered", None)
        elif attempt >= self.max_attempts:
            log.warning("webhook delivery %s to %s given up after %d attempts: %s", row["delivery_id"], row["url"],
                        attempt, error)
            store.record_attempt(self.db, row["id"], attempt, status, error, took, "failed", None)
        else:
            retry_at = time.time() + backoff_delay(attempt, self.backoff, self.backoff_cap)
            store.record_attempt(self.db, row["id"], attempt, status, error, took, "pending", retry_at)

    def _post(self, row: dict) -> tuple[int | None, str | None]:
        """One attempt: (status code or None, error or None). A 2xx answer is the only success."""
        body = row["body"].encode()
        try:
            target = parse(row["url"])
            addresses = self.policy.addresses(target)
        except Refused as exc:
            return None, f"refused: {exc.message}"
        except Exception as exc:
            return None, f"refused: {exc}"
        headers = {"Host": target.host_header(), "Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-Assay-Event": row["event"], "X-Assay-Delivery": row["delivery_id"],
                   SIGNATURE_HEADER: signature(row["secret"], body)}
        kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        error = "no address to connect to"
        for address in addresses:
            conn = kind(target, address, self.timeout)
            with self._cond:
                if self._stopped:
                    raise _Aborted
                self._conn = conn
            try:
                conn.putrequest("POST", target.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                response = conn.getresponse()
                status = response.status
                text = response.read(300).decode("utf-8", "replace").strip()
                location = response.getheader("Location")
            except (OSError, http.client.HTTPException) as exc:
                if self._stopped:
                    raise _Aborted from None
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, (ConnectionRefusedError, socket.gaierror)) or "connect" in str(exc).lower():
                    continue  # the next address may answer
                return None, error
            finally:
                with self._cond:
                    self._conn = None
                conn.close()
            if 200 <= status < 300:
                return status, None
            if 300 <= status < 400:
                return status, (f"HTTP {status}: redirect to {location or '(no Location)'} not followed; webhooks "
                                "post only to the URL registered: register the final URL")
            return status, f"HTTP {status}" + (f": {text}" if text else "")
        return None, error
