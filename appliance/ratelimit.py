"""Sign-in rate limits: failures per key (a kind of sign-in and a client address or an
account) in a sliding window. The web UI (failures kept in its database, shared by its
workers) and the node's /v1 APIs (kept in the node's memory) use this one limiter.

    limiter = Limiter(MemoryAttempts(), limit=5, window=300)
    with limiter.attempt("release", client_address, user):
        ...check the password...

`attempt` charges a failure to every key *before* the password is checked and takes the
charge back unless the check failed: so a thousand concurrent guesses cannot all slip
in before the first failure is counted, and a request that never reached the check
(bad input, a busy node) costs nothing. A success takes back only its own charge;
earlier failures age out of the window (so an attacker cannot reset a counter by
signing in to an account of their own).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Protocol

from appliance.errors import TooManyRequests, Unauthorized

LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


class Attempts(Protocol):
    """Where failures are kept."""

    def failures(self, key: str, window: float) -> tuple[int, float]:
        """How many failures `key` had in the last `window` seconds, and the oldest one's
        time (0 when none)."""

    def fail(self, key: str) -> None:
        """Record a failure of `key` now."""

    def forget(self, key: str) -> None:
        """Take back the newest failure of `key` (a charge that was not a failure)."""

    def clear(self, key: str) -> None:
        """Forget every failure of `key`."""


class MemoryAttempts:
    """Failures in this process's memory, for at most `max_keys` keys (the ones failed
    longest ago are dropped first) and `keep` seconds."""

    def __init__(self, keep: float = 86400, max_keys: int = 20_000) -> None:
        self.keep = keep
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._times: dict[str, list[float]] = {}

    def failures(self, key: str, window: float) -> tuple[int, float]:
        since = time.time() - window
        with self._lock:
            recent = [t for t in self._times.get(key, ()) if t > since]
        return len(recent), min(recent, default=0.0)

    def fail(self, key: str) -> None:
        now = time.time()
        with self._lock:
            times = [t for t in self._times.pop(key, ()) if t > now - self.keep][-999:]
            self._times[key] = [*times, now]  # re-inserted: the dict is oldest first
            while len(self._times) > self.max_keys:
                del self._times[next(iter(self._times))]

    def forget(self, key: str) -> None:
        with self._lock:
            times = self._times.get(key)
            if times:
                times.pop()
            if not times:
                self._times.pop(key, None)

    def clear(self, key: str) -> None:
        with self._lock:
            self._times.pop(key, None)

    def __len__(self) -> int:
        return len(self._times)


class Limiter:
    """At most `limit` failures per key in `window` seconds. Addresses in `exempt` are
    not limited per address (the node's own web UI calls from loopback on behalf of
    everyone and limits by the real address itself); their accounts still are."""

    def __init__(
        self,
        attempts: Attempts,
        limit: int,
        window: float,
        exempt: Iterable[str] = (),
    ) -> None:
        self.attempts = attempts
        self.limit = limit
        self.window = window
        self.exempt = frozenset(exempt)
        self._lock = threading.Lock()

    def keys(self, kind: str, address: str, names: Iterable[str]) -> list[str]:
        keys = [] if address in self.exempt else [f"{kind}:ip:{address}"]
        return keys + [f"{kind}:name:{n.strip().lower()}" for n in names if n]

    def check(self, kind: str, address: str, *names: str) -> None:
        """Refuse (TooManyRequests, with Retry-After) while any key is at the limit."""
        self._refuse_at(self.keys(kind, address, names), self.limit)

    def _refuse_at(self, keys: list[str], limit: int) -> None:
        for key in keys:
            count, first = self.attempts.failures(key, self.window)
            if count >= limit:
                wait = max(1, math.ceil(first + self.window - time.time()))
                minutes = math.ceil(wait / 60)
                err = TooManyRequests(
                    f"Too many wrong attempts. For your security, wait {minutes} minute"
                    f"{'s' if minutes != 1 else ''} before trying again."
                )
                err.retry_after = wait
                raise err

    def failed(self, kind: str, address: str, *names: str) -> None:
        for key in self.keys(kind, address, names):
            self.attempts.fail(key)

    def succeeded(self, kind: str, address: str, *names: str) -> None:
        """Forget every failure of these keys (the web UI, after a checked sign-in)."""
        for key in self.keys(kind, address, names):
            self.attempts.clear(key)

    @contextlib.contextmanager
    def attempt(
        self,
        kind: str,
        address: str,
        *names: str,
        failure: type[Exception] = Unauthorized,
    ) -> Iterator[None]:
        """Guard one password check: refused at the limit; charged as a failure up front;
        the charge stays only when `failure` escapes (see the module's docstring)."""
        keys = self.keys(kind, address, names)
        with self._lock:
            self._refuse_at(keys, self.limit)
            for key in keys:
                self.attempts.fail(key)
        failed = False
        try:
            yield
        except failure:
            failed = True
            raise
        finally:
            if not failed:
                for key in keys:
                    self.attempts.forget(key)
