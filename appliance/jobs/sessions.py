"""Signed-in release sessions: the owner's private key, opened once at sign-in (one KDF
run), kept only in this process's memory under a random token that only the caller
holds; releases in the session pay no KDF. A session ends at sign-out, after IDLE
seconds unused or MAX_AGE seconds after sign-in; an ended session's key is dropped."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import Unauthorized

IDLE = 30 * 60
MAX_AGE = 8 * 3600
LIMIT = 10_000  # sessions held at most; the oldest goes first
ENDED = "your session ended: sign in again"


@dataclass
class _Entry:
    name: str
    private: X25519PrivateKey
    started: float
    used: float


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class KeySessions:
    """Tokens (held as their SHA-256 only) to opened keys, in memory, thread-safe."""

    def __init__(
        self,
        idle: float = IDLE,
        max_age: float = MAX_AGE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle, self.max_age, self.clock = idle, max_age, clock
        self._held: dict[bytes, _Entry] = {}
        self._lock = threading.Lock()

    def open(self, name: str, private: X25519PrivateKey) -> str:
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._sweep(now)
            if len(self._held) >= LIMIT:
                del self._held[min(self._held, key=lambda k: self._held[k].started)]
            self._held[_digest(token)] = _Entry(name, private, now, now)
        return token

    def get(self, token: str) -> tuple[str, X25519PrivateKey]:
        """The session's user and key; Unauthorized once it ended (or never was)."""
        now = self.clock()
        with self._lock:
            self._sweep(now)
            entry = self._held.get(_digest(token))
            if entry is None:
                raise Unauthorized(ENDED)
            entry.used = now
            return entry.name, entry.private

    def close(self, token: str) -> None:
        with self._lock:
            self._held.pop(_digest(token), None)

    def close_user(self, name: str) -> None:
        """Every session of `name` (e.g. after a password reset)."""
        with self._lock:
            for key in [k for k, e in self._held.items() if e.name == name]:
                del self._held[key]

    def __len__(self) -> int:
        with self._lock:
            self._sweep(self.clock())
            return len(self._held)

    def _sweep(self, now: float) -> None:
        for key in [
            k
            for k, e in self._held.items()
            if now - e.used > self.idle or now - e.started > self.max_age
        ]:
            del self._held[key]
