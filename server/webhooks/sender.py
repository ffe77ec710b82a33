"""The threads that post the outbox: signed, with exponential backoff, never redirected, each delivery within
one total deadline, deliveries to different receivers side by side.

Requests never wait on them: they only write outbox rows (assay.webhooks.events) and :meth:`WebhookSender.wake`
the sender. Rows stay in the database until delivered or given up, so a restart loses nothing: a new sender
takes up what is pending. A delivery is claimed in the database while it is tried, so two processes sharing
a database (the server and a CLI command) never post it twice at once.

One dispatcher thread claims due deliveries and hands each to one of ``parallel`` poster threads. A receiver
that answers slowly, or trickles its answer a byte at a time, holds one poster for at most ``timeout``
seconds in all (a watchdog cuts the connection then, whatever the socket's per-read timeout says), and holds
only its own deliveries meanwhile: at most one delivery per receiver (host and port) is in flight, and one
project's deliveries take at most half the posters, so another project's always find one free.
"""
from __future__ import annotations

import hashlib
import hmac
import http
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
BODY_SHOWN = 300  # bytes of a listed receiver's answer the delivery log keeps
_SENDERS: "weakref.WeakSet[WebhookSender]" = weakref.WeakSet()


def live_senders() -> list["WebhookSender"]:
    return list(_SENDERS)


def signature(secret: str, body: bytes) -> str:
    """The ``X-Assay-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the raw body under the secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): base, 2 base, 4 base, ... up to cap."""
    return min(cap, base * 2 ** (attempt - 1))


def reason(status: int) -> str:
    """The standard phrase of a status code: our own words, never the receiver's."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "unknown status"


class _Aborted(Exception):
    """The sender was stopped in the middle of an attempt: it counts for nothing."""


class _PinnedHTTP(http.client.HTTPConnection):
    """A connection to one checked address, whatever the host name would resolve to by now."""

    def __init__(self, target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout)
        self._address = address
        self.raw = None  # the TCP socket, for the watchdog to cut

    def _open(self) -> socket.socket:
        self.raw = socket.create_connection((self._address, self.port), self.timeout)
        return self.raw

    def connect(self):
        self.sock = self._open()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target, address: str, timeout: float):
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._address = address
        self.raw = None

    def connect(self):
        self.raw = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the URL's host name, not the address connected to.
        self.sock = self._context.wrap_socket(self.raw, server_hostname=self.host)


class _Attempt:
    """One delivery in flight: its connection, for the watchdog and shutdown to cut."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.conn = None
        self.timed_out = False
        self.lock = threading.Lock()

    def cut(self, timed_out: bool = False) -> None:
        with self.lock:
            if timed_out:
                self.timed_out = True
            conn = self.conn
        sock = getattr(conn, "raw", None) if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked connect, send or recv at once
            except OSError:
                pass


class WebhookSender:
    def __init__(self, db, policy: HostPolicy, *, timeout: float = 10.0, max_attempts: int = 15,
                 backoff: float = 1.0, backoff_cap: float = 3600.0, poll: float = 2.0, parallel: int = 4):
        self.db = db
        self.policy = policy
        self.timeout = float(timeout)  # seconds for a whole attempt: connect, send, and the answer's head
        self.max_attempts = max(1, int(max_attempts))
        self.backoff = float(backoff)
        self.backoff_cap = float(backoff_cap)
        # Rows another process wrote (or whose claim ran out) are seen within this many seconds.
        self.poll = float(poll)
        self.parallel = max(1, int(parallel))
        # One project's deliveries take at most this many posters, so another project's find one free.
        self.per_project = max(1, self.parallel // 2)
        self._cond = threading.Condition()
        self._woken = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._posters: list[threading.Thread] = []
        self._todo: list[tuple[dict, str]] = []  # handed to the posters: (row, receiver)
        self._busy_receivers: set[str] = set()
        self._busy_projects: dict[int, int] = {}
        self._in_flight: dict[int, _Attempt] = {}  # outbox id -> attempt
        self._receiver_of: dict[int, str] = {}  # hook id -> host:port, learned from its rows
        self.attempts_made = 0
        _SENDERS.add(self)

    # -- called from other threads --------------------------------------------
    def start(self) -> None:
        with self._cond:
            if self._stopped or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._loop, name=THREAD_NAME, daemon=True)
            self._posters = [threading.Thread(target=self._post_loop, name=f"{THREAD_NAME}-{n}", daemon=True)
                             for n in range(self.parallel)]
            for thread in (self._thread, *self._posters):
                thread.start()

    def wake(self) -> None:
        """New deliveries were committed: look now instead of at the next poll."""
        self.start()
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def shutdown(self, timeout: float = 30.0) -> bool:
        """Stop for good and join the threads. Attempts in progress are cut off and their deliveries left pending
        for the next start; returns whether the threads are gone (only then may the database be closed)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
            threads = [t for t in (self._thread, *self._posters) if t is not None]
            attempts = list(self._in_flight.values())
        for attempt in attempts:
            attempt.cut()
        deadline = time.monotonic() + timeout
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in threads if t is not threading.current_thread()):
            log.error("the webhook sender threads did not stop within %g s", timeout)
            return False
        return True

    def alive(self) -> bool:
        return any(t is not None and t.is_alive() for t in (self._thread, *self._posters))

    # -- the dispatcher thread --------------------------------------------------
    def _receiver(self, row: dict) -> str:
        """Who receives ``row``: host:port (remembered per webhook, so the next claim passes over a busy one)."""
        try:
            where = parse(row["url"]).where
        except Exception:  # a URL the policy refuses anyway: its attempt only logs that
            where = f"hook {row['hook_id']}"
        with self._cond:
            self._receiver_of[row["hook_id"]] = where
        return where

    def _loop(self) -> None:
        while not self._stopped:
            due = None
            try:
                with self._cond:
                    free = self.parallel - len(self._in_flight) - len(self._todo)
                    skip_projects = [p for p, n in self._busy_projects.items() if n >= self.per_project]
                    skip_hooks = [h for h, where in self._receiver_of.items() if where in self._busy_receivers]
                if free > 0:
                    # Claimed for as long as one attempt can take: each starts now or is given back at once.
                    rows = store.claim_deliveries(self.db, time.time(), claim_seconds=self.timeout + 30.0,
                                                  limit=free, skip_hooks=skip_hooks, skip_projects=skip_projects)
                    given_back, seen = [], set()
                    for row in rows:
                        where = self._receiver(row)
                        # Only a receiver's oldest claimed delivery goes, so its deliveries arrive in the order
                        # they were made: a later one must not slip past one given back (its poster may have
                        # finished by the time the later one is looked at).
                        if where in seen or not self._hand_over(row, where):
                            given_back.append(row["id"])
                        seen.add(where)
                    if given_back:
                        store.release_claim(self.db, *given_back)
                    if rows:
                        # Given back rows now count as busy: the next claim passes over them to other receivers.
                        continue
                    due = store.next_due(self.db, skip_hooks=skip_hooks, skip_projects=skip_projects)
            except Exception:  # the sender must survive anything; the rows stay for the next round
                log.exception("the webhook sender failed; trying again in %g s", self.poll)
            wait = self.poll if due is None else min(self.poll, max(0.05, due - time.time()))
            with self._cond:
                if not self._woken and not self._stopped:
                    self._cond.wait(wait)
                self._woken = False
        self._release_unstarted()

    def _hand_over(self, row: dict, where: str) -> bool:
        """Give a claimed row to a poster, unless its receiver (``where``) or project has no room now."""
        with self._cond:
            if (self._stopped or where in self._busy_receivers
                    or self._busy_projects.get(row["project_id"], 0) >= self.per_project):
                return False
            self._busy_receivers.add(where)
            self._busy_projects[row["project_id"]] = self._busy_projects.get(row["project_id"], 0) + 1
            self._todo.append((row, where))
            self._cond.notify_all()
            return True

    def _release_unstarted(self) -> None:
        with self._cond:
            left, self._todo = self._todo, []
        for row, where in left:
            self._done(row, where)
        try:
            store.release_claim(self.db, *(row["id"] for row, _ in left))
        except Exception:
            log.exception("could not give back %d webhook deliveries; their claims run out by themselves", len(left))

    def _done(self, row: dict, where: str) -> None:
        with self._cond:
            self._in_flight.pop(row["id"], None)
            self._busy_receivers.discard(where)
            n = self._busy_projects.get(row["project_id"], 1) - 1
            if n > 0:
                self._busy_projects[row["project_id"]] = n
            else:
                self._busy_projects.pop(row["project_id"], None)
            if not self._in_flight and not self._todo and len(self._receiver_of) > 10_000:
                self._receiver_of.clear()  # hooks come and go; forget them rather than grow
            self._woken = True  # a receiver or project has room again: the dispatcher looks now
            self._cond.notify_all()

    # -- the poster threads -----------------------------------------------------
    def _post_loop(self) -> None:
        while True:
            with self._cond:
                while not self._todo and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                row, where = self._todo.pop(0)
                attempt = self._in_flight[row["id"]] = _Attempt(time.monotonic() + self.timeout)
            try:
                self._attempt(row, attempt)
            except Exception:
                log.exception("webhook delivery %s failed unexpectedly; it stays pending", row.get("delivery_id"))
                try:
                    store.release_claim(self.db, row["id"])
                except Exception:
                    pass
            finally:
                self._done(row, where)

    def _attempt(self, row: dict, attempt: _Attempt) -> None:
        attempt_no = int(row["attempts"]) + 1
        started = time.perf_counter()
        watchdog = threading.Timer(self.timeout, attempt.cut, kwargs={"timed_out": True})
        watchdog.daemon = True
        watchdog.start()
        try:
            status, error = self._post(row, attempt)
        except _Aborted:
            store.release_claim(self.db, row["id"])
            return
        finally:
            watchdog.cancel()
        took = round(1000 * (time.perf_counter() - started))
        self.attempts_made += 1
        if error is None:
            store.record_attempt(self.db, row["id"], attempt_no, status, None, took, "delivered", None)
        elif attempt_no >= self.max_attempts:
            log.warning("webhook delivery %s to %s given up after %d attempts: %s", row["delivery_id"], row["url"],
                        attempt_no, error)
            store.record_attempt(self.db, row["id"], attempt_no, status, error, took, "failed", None)
        else:
            retry_at = time.time() + backoff_delay(attempt_no, self.backoff, self.backoff_cap)
            store.record_attempt(self.db, row["id"], attempt_no, status, error, took, "pending", retry_at)

    def _post(self, row: dict, attempt: _Attempt) -> tuple[int | None, str | None]:
        """One attempt: (status code or None, error or None). A 2xx answer is the only success."""
        body = row["body"].encode()
        try:
            target = parse(row["url"])
            addresses = self._checked_addresses(target, attempt.deadline - time.monotonic())
        except Refused as exc:
            return None, f"refused: {exc.message}"
        except TimeoutError:
            return None, self._late("resolving the host's name")
        except Exception as exc:
            return None, f"refused: {exc}"
        # Only the operator's own hosts may show what they answered: for any other, the log is the owner's
        # window onto a host the server reached for them, and says no more than the status.
        show_body = self.policy.listed(target)
        headers = {"Host": target.host_header(), "Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "X-Assay-Event": row["event"], "X-Assay-Delivery": row["delivery_id"],
                   SIGNATURE_HEADER: signature(row["secret"], body)}
        kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
        error = "no address to connect to"
        for address in addresses:
            left = attempt.deadline - time.monotonic()
            if left <= 0:
                return None, self._late()
            conn = kind(target, address, left)
            with attempt.lock:
                attempt.conn = conn
            if self._stopped:
                conn.close()
                raise _Aborted
            try:
                conn.putrequest("POST", target.path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                response = conn.getresponse()
                status = response.status
                text = response.read(BODY_SHOWN).decode("utf-8", "replace").strip() if show_body else ""
                location = response.getheader("Location")
            except (OSError, http.client.HTTPException) as exc:
                if self._stopped:
                    raise _Aborted from None
                if attempt.timed_out:
                    return None, self._late()
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, (ConnectionRefusedError, socket.gaierror)) or "connect" in str(exc).lower():
                    continue  # the next address may answer
                return None, error
            finally:
                with attempt.lock:
                    attempt.conn = None
                conn.close()
            if attempt.timed_out:
                return status, self._late()
            if 200 <= status < 300:
                return status, None
            if 300 <= status < 400:
                where = (location or "(no Location)") if show_body else "another URL"
                return status, (f"HTTP {status}: redirect to {where} not followed; webhooks post only to the URL "
                                "registered: register the final URL")
            return status, f"HTTP {status} {reason(status)}" + (f": {text}" if text else "")
        return None, error

    def _checked_addresses(self, target, seconds: float) -> list[str]:
        """The policy's addresses for ``target``, or TimeoutError after ``seconds``: the system's resolver has
        its own timeouts (several seconds per server), and a name whose DNS never answers must not stretch the
        attempt's deadline. A resolver still waiting then finishes in its own daemon thread, for nothing."""
        found: dict = {}

        def resolve():
            try:
                found["addresses"] = self.policy.addresses(target)
            except BaseException as exc:  # handed to the poster
                found["error"] = exc

        thread = threading.Thread(target=resolve, name=f"{THREAD_NAME}-resolve", daemon=True)
        thread.start()
        thread.join(max(0.0, seconds))
        if thread.is_alive():
            raise TimeoutError
        if "error" in found:
            raise found["error"]
        return found["addresses"]

    def _late(self, doing: str = "") -> str:
        if doing:
            return (f"timed out {doing} (ASSAY_WEBHOOK_TIMEOUT, {self.timeout:g} s, bounds each attempt, "
                    "resolving, connecting and reading included)")
        return (f"timed out: no whole answer within {self.timeout:g} s (ASSAY_WEBHOOK_TIMEOUT bounds each attempt, "
                "connecting and reading included); the receiver should answer at once and work afterwards")
