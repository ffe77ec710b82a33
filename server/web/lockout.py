"""Backoff after failed logins: per name and per address, so neither guessing one account's password nor
trying many accounts from one address goes at the speed of the password hash.

After ``after`` failures in a row (a name: any address; an address: any name), each further attempt must wait
1 s, then 2, 4 … up to ``cap`` seconds after the last failure; an attempt made sooner is refused without
checking the password. A success clears its name's count, not its address's (else an attacker with one
account of their own would clear their address between guesses). Failures older than ``forget`` seconds
count no more. Names are counted whether they exist or not, so the wait tells nothing about which do.

The counts live in this process's memory: a restart clears them, and several server processes count
separately (each still backs off).
"""
from __future__ import annotations

import threading
import time

MAX_KEYS = 100_000  # beyond, half are forgotten rather than grow without bound (invented names)


class LoginBackoff:
    def __init__(self, per_name: int = 5, per_address: int = 20, cap: float = 900.0, forget: float = 3600.0,
                 clock=time.monotonic):
        self.limits = {"name": max(1, int(per_name)), "addr": max(1, int(per_address))}
        self.cap = float(cap)
        self.forget = float(forget)
        self._clock = clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}  # (kind, key) -> (count, last failure)
        self._lock = threading.Lock()

    def _wait(self, kind: str, key: str, now: float) -> float:
        count, last = self._failures.get((kind, key), (0, now))
        if now - last > self.forget:
            self._failures.pop((kind, key), None)
            return 0.0
        over = count - self.limits[kind]
        if over < 0:
            return 0.0
        return max(0.0, last + min(self.cap, 2.0 ** over) - now)

    def wait(self, name: str, address: str) -> float:
        """Seconds before ``name`` may try again from ``address``; 0: now."""
        now = self._clock()
        with self._lock:
            return max(self._wait("name", name.lower(), now), self._wait("addr", address, now))

    def failed(self, name: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) > MAX_KEYS:
                self._forget_some()
            for kind, key in (("name", name.lower()), ("addr", address)):
                count, _ = self._failures.get((kind, key), (0, now))
                self._failures[(kind, key)] = (count + 1, now)

    def _forget_some(self) -> None:
        # Half, fewest failures first (then the oldest): a flood of invented names, one failure each, must not
        # wipe the count of the name it is really guessing at.
        kept = sorted(self._failures.items(), key=lambda entry: entry[1])
        self._failures = dict(kept[len(kept) // 2:])

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("name", name.lower()), None)
