"""jobs.sessions: an opened key is held in memory under a token, until sign-out, idle
expiry or the maximum age; an unknown or ended token is refused the same way."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.errors import Unauthorized
from appliance.jobs.sessions import KeySessions, key_stamp
from appliance.site.directory import UserRecord


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Directory:
    """A directory's version and user records, as `KeySessions.follow` reads them."""

    def __init__(self, version: int, users: dict[str, UserRecord]) -> None:
        self.version, self.users = version, users

    def user(self, name: str) -> UserRecord | None:
        return self.users.get(name)


def record(name: str, public: str, wrapped: str = "w1", token: str = "t1") -> UserRecord:
    return UserRecord(name, public, {"kdf": wrapped}, token)


def test_a_password_reset_or_removal_in_a_new_directory_ends_the_users_sessions() -> None:
    held = KeySessions()
    alice, bob, carol = record("alice", "pa"), record("bob", "pb"), record("carol", "pc")
    a = held.open("alice", X25519PrivateKey.generate(), key_stamp(alice))
    b = held.open("bob", X25519PrivateKey.generate(), key_stamp(bob))
    c = held.open("carol", X25519PrivateKey.generate(), key_stamp(carol))
    users = {"alice": alice, "bob": bob, "carol": carol}
    assert held.follow(Directory(1, users)) == 0
    # A sign-in's KDF upgrade re-wraps the same key: nothing ends.
    assert held.follow(Directory(2, {**users, "bob": record("bob", "pb", wrapped="w2")})) == 0
    # Alice's password is reset (a new key pair and token), Carol removed.
    reset = {"alice": record("alice", "pa2", token="t2"), "bob": bob}
    assert held.follow(Directory(3, reset)) == 2
    for token in (a, c):
        with pytest.raises(Unauthorized):
            held.get(token)
    assert held.get(b)[0] == "bob"
    # A session opened from a record that a newer version already replaced ends too.
    late = held.open("alice", X25519PrivateKey.generate(), key_stamp(alice))
    assert held.follow(Directory(3, reset)) == 0  # the same version: not read again
    assert held.follow(Directory(4, reset)) == 1
    with pytest.raises(Unauthorized):
        held.get(late)
    assert len(held) == 1


def test_a_session_gives_back_its_key_until_sign_out() -> None:
    held = KeySessions()
    key = X25519PrivateKey.generate()
    token = held.open("alice", key, "s")
    assert held.get(token) == ("alice", key)
    held.close(token)
    with pytest.raises(Unauthorized):
        held.get(token)
    assert len(held) == 0


def test_idle_and_max_age_end_a_session() -> None:
    clock = Clock()
    held = KeySessions(idle=60, max_age=300, clock=clock)
    token = held.open("alice", X25519PrivateKey.generate(), "s")
    for _ in range(4):  # used every 50 s: idle never reached, but the age is
        clock.now += 50
        held.get(token)
    clock.now += 59
    held.get(token)
    clock.now += 42  # 301 s after sign-in
    with pytest.raises(Unauthorized):
        held.get(token)
    other = held.open("bob", X25519PrivateKey.generate(), "s")
    clock.now += 61
    with pytest.raises(Unauthorized):
        held.get(other)
    assert len(held) == 0


def test_a_token_opens_only_its_own_session() -> None:
    held = KeySessions()
    a = held.open("alice", X25519PrivateKey.generate(), "s")
    b = held.open("bob", X25519PrivateKey.generate(), "s")
    assert held.get(a)[0] == "alice" and held.get(b)[0] == "bob"
    with pytest.raises(Unauthorized):
        held.get(a + "x")
    held.close_user("alice")
    with pytest.raises(Unauthorized):
        held.get(a)
    assert held.get(b)[0] == "bob"
