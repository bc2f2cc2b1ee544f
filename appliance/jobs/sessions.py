"""Signed-in release sessions: the owner's private key, opened once at sign-in (one KDF
run), kept only in this process's memory under a random token that only the caller
holds; releases in the session pay no KDF. A session ends at sign-out, after IDLE
seconds unused or MAX_AGE seconds after sign-in, and when the user's password is reset
or the user removed (`follow`: the node applied a directory version in which the user's
key pair changed or the user is gone); an ended session's key is dropped."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import Unauthorized
from appliance.site.directory import UserRecord

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
    stamp: str


class Users(Protocol):
    """What `follow` reads of a directory."""

    @property
    def version(self) -> int: ...

    def user(self, name: str) -> UserRecord | None: ...


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def key_stamp(record: UserRecord | None) -> str:
    """What a password reset changes in a user's record: the key pair and the submit
    token (a sign-in's KDF upgrade re-wraps the same key: its sessions go on)."""
    if record is None:
        return ""
    return hashlib.sha256(f"{record.public_key}\n{record.token_hash}".encode()).hexdigest()


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
        self._version: int | None = None  # the directory version `follow` last read

    def open(self, name: str, private: X25519PrivateKey, stamp: str) -> str:
        """A session for `name`'s opened key; `stamp`: the `key_stamp` of the user record
        the key was opened from (a session ends when the record's stamp changes)."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with self._lock:
            self._sweep(now)
            if len(self._held) >= LIMIT:
                del self._held[min(self._held, key=lambda k: self._held[k].started)]
            self._held[_digest(token)] = _Entry(name, private, now, now, stamp)
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

    def follow(self, directory: Users) -> int:
        """End the sessions of every user whose password was reset (or who was removed)
        in `directory`, when its version is new to us; how many ended. Called on every
        session use and by the node's maintenance loop, so a key is dropped as soon as
        the node has the new directory, and never used after it."""
        with self._lock:
            if directory.version == self._version:
                return 0
            self._version = directory.version
            stale = [
                k for k, e in self._held.items() if key_stamp(directory.user(e.name)) != e.stamp
            ]
            for key in stale:
                del self._held[key]
            return len(stale)

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
