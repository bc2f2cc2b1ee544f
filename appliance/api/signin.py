"""Rate limits on the /v1 sign-ins, as the web UI has them (`appliance.ratelimit`): at
most LIMIT wrong passwords (or submit tokens) per account and per client address in
WINDOW seconds, counted in the node's memory. A guess is charged before the password
is checked, so concurrent guesses count too; the KDF gate (`crypto.userkeys`) bounds how
many checks run at once.

Loopback is limited per account only: the node's web release page and web UI call the
release API from there for everyone, and limit by the real address themselves.
Submit tokens (192 bits) and the recovery key (125 bits) are random, so guessing them is
hopeless: they are limited per address only (a per-account limit on tokens would let
anyone stop a user's printing).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from appliance.crypto.userkeys import WrongPassword
from appliance.errors import Unauthorized
from appliance.https.server import Request
from appliance.ratelimit import LOOPBACK, Limiter, MemoryAttempts

LIMIT = 5
WINDOW = 5 * 60


def new_limiter() -> Limiter:
    """The limiter of one API (each server keeps its own counts)."""
    return Limiter(MemoryAttempts(), LIMIT, WINDOW, exempt=LOOPBACK)


def password_attempt(limiter: Limiter, request: Request, user: str) -> AbstractContextManager[None]:
    """Guard a request whose password is checked (counted only when it is wrong)."""
    return limiter.attempt("password", request.client[0], user, failure=WrongPassword)


def token_attempt(limiter: Limiter, request: Request) -> AbstractContextManager[None]:
    """Guard a check of a random secret, a submit token or a recovery proof (per address
    only)."""
    return limiter.attempt("token", request.client[0], failure=Unauthorized)
