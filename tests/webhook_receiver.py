"""A webhook receiver for tests: an http.server on 127.0.0.1 in a thread that records what it is posted.

``answers`` is the list of status codes it gives, one per request (the last one repeats); ``delay`` seconds
before each answer; ``redirect_to`` makes 3xx answers carry that Location; ``body`` is what every answer says.
:class:`Trickler` answers one byte at a time, forever.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, answers=(200,), delay: float = 0.0, redirect_to: str | None = None, port: int = 0,
                 body: bytes = b"ok"):
        self.answers = list(answers)
        self.body = body
        self.delay = delay
        self.redirect_to = redirect_to
        self.received: list[dict] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._cond:
                    n = len(receiver.received)
                    receiver.received.append({"at": time.monotonic(), "path": self.path, "headers": dict(self.headers),
                                              "body": body})
                    receiver._cond.notify_all()
                status = receiver.answers[min(n, len(receiver.answers) - 1)]
                if receiver.delay:
                    time.sleep(receiver.delay)
                try:
                    self.send_response(status)
                    if 300 <= status < 400 and receiver.redirect_to:
                        self.send_header("Location", receiver.redirect_to)
                    self.send_header("Content-Length", str(len(receiver.body)))
                    self.end_headers()
                    self.wfile.write(receiver.body)
                except OSError:
                    pass  # the sender hung up (it was shut down)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def wait_for(self, n: int, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.received)} of {n} deliveries arrived within {timeout} s"
                self._cond.wait(left)
            return list(self.received)

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


class Trickler:
    """A receiver on 127.0.0.1 that takes the request, then sends its answer's head one byte every ``every``
    seconds and never finishes it: each read of a sender's socket succeeds well within any per-read timeout."""

    def __init__(self, every: float = 0.2):
        self.every = every
        self.accepted: list[float] = []  # when each connection came (time.monotonic())
        self.closed: list[float] = []  # when the sender hung up on it
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/slow"
        self._thread = threading.Thread(target=self._accept, name="webhook-trickler", daemon=True)
        self._thread.start()

    def _accept(self):
        self._listener.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                continue
            self.accepted.append(time.monotonic())
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn):
        head = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 10_000
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)  # the request (small enough to come at once)
                for byte in head:
                    if self._stop.wait(self.every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                self.closed.append(time.monotonic())

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join(5)


def signed_by(request: dict, secret: str) -> bool:
    """Whether the request carries a valid X-Assay-Signature for its raw body, checked as a receiver would."""
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"].get("X-Assay-Signature", ""), expected)


def free_port() -> int:
    """A port nothing listens on (just now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
