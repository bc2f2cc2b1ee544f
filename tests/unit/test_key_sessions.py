"""jobs.sessions: an opened key is held in memory under a token, until sign-out, idle
expiry or the maximum age; an unknown or ended token is refused the same way."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import Unauthorized
from appliance.jobs.sessions import KeySessions


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_gives_back_its_key_until_sign_out() -> None:
    held = KeySessions()
    key = X25519PrivateKey.generate()
    token = held.open("alice", key)
    assert held.get(token) == ("alice", key)
    held.close(token)
    with pytest.raises(Unauthorized):
        held.get(token)
    assert len(held) == 0


def test_idle_and_max_age_end_a_session() -> None:
    clock = Clock()
    held = KeySessions(idle=60, max_age=300, clock=clock)
    token = held.open("alice", X25519PrivateKey.generate())
    for _ in range(4):  # used every 50 s: idle never reached, but the age is
        clock.now += 50
        held.get(token)
    clock.now += 59
    held.get(token)
    clock.now += 42  # 301 s after sign-in
    with pytest.raises(Unauthorized):
        held.get(token)
    other = held.open("bob", X25519PrivateKey.generate())
    clock.now += 61
    with pytest.raises(Unauthorized):
        held.get(other)
    assert len(held) == 0


def test_a_token_opens_only_its_own_session() -> None:
    held = KeySessions()
    a = held.open("alice", X25519PrivateKey.generate())
    b = held.open("bob", X25519PrivateKey.generate())
    assert held.get(a)[0] == "alice" and held.get(b)[0] == "bob"
    with pytest.raises(Unauthorized):
        held.get(a + "x")
    held.close_user("alice")
    with pytest.raises(Unauthorized):
        held.get(a)
    assert held.get(b)[0] == "bob"
