"""appliance.crypto.userkeys: password-wrapped X25519 keys and sealing to a public key."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto import userkeys
from appliance.crypto.userkeys import (
    WrappedKey,
    create_user_key,
    open_sealed,
    public_bytes,
    seal,
    unb64,
    unwrap_private_key,
)
from appliance.errors import MeshprintError, Unauthorized

PASSWORD = "correct horse battery"
CONTEXT = b"j0123456789abcdef01234567"


@pytest.fixture(scope="module")
def user() -> tuple[bytes, WrappedKey]:
    return create_user_key(PASSWORD)


@pytest.fixture(scope="module")
def private(user: tuple[bytes, WrappedKey]) -> X25519PrivateKey:
    return unwrap_private_key(user[1], PASSWORD)


def test_unwrap_with_the_right_password_gives_the_key_pair(
    user: tuple[bytes, WrappedKey], private: X25519PrivateKey
) -> None:
    public, wrapped = user
    assert len(public) == 32
    assert public_bytes(private) == public
    assert wrapped.n == userkeys.SCRYPT_N
    assert (wrapped.r, wrapped.p) == (userkeys.SCRYPT_R, userkeys.SCRYPT_P)
    assert len(unb64(wrapped.salt)) == 16
    assert len(unb64(wrapped.nonce)) == 12


def test_wrapped_key_survives_a_dict_round_trip(user: tuple[bytes, WrappedKey]) -> None:
    public, wrapped = user
    again = WrappedKey.from_dict(wrapped.to_dict())
    assert again == wrapped
    assert public_bytes(unwrap_private_key(again, PASSWORD)) == public


@pytest.mark.parametrize("password", ["correct horse battery!", "Correct horse battery", ""])
def test_wrong_password_is_unauthorized(user: tuple[bytes, WrappedKey], password: str) -> None:
    with pytest.raises(Unauthorized):
        unwrap_private_key(user[1], password)


def test_tampered_wrapped_key_is_unauthorized(user: tuple[bytes, WrappedKey]) -> None:
    wrapped = user[1]
    sealed = bytearray(unb64(wrapped.sealed))
    sealed[0] ^= 1
    tampered = WrappedKey.from_dict({**wrapped.to_dict(), "sealed": userkeys.b64(bytes(sealed))})
    with pytest.raises(Unauthorized):
        unwrap_private_key(tampered, PASSWORD)


def test_each_key_is_new(user: tuple[bytes, WrappedKey]) -> None:
    public, wrapped = create_user_key(PASSWORD)
    assert public != user[0]
    assert wrapped.salt != user[1].salt


@pytest.mark.parametrize("password", ["", "short", "7chars!"])
def test_short_password_is_rejected(password: str) -> None:
    with pytest.raises(MeshprintError, match="at least 8"):
        create_user_key(password)


def test_eight_character_password_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(userkeys, "SCRYPT_N", 2**10)  # fast: the cost is stored in the key
    public, wrapped = create_user_key("8chars!!")
    assert wrapped.n == 2**10
    assert public_bytes(unwrap_private_key(wrapped, "8chars!!")) == public


@pytest.mark.parametrize("plaintext", [b"", b"x", bytes(range(256)) * 4])
def test_seal_and_open_round_trip(
    user: tuple[bytes, WrappedKey], private: X25519PrivateKey, plaintext: bytes
) -> None:
    sealed = seal(user[0], plaintext, CONTEXT)
    assert len(sealed) == 32 + len(plaintext) + 16
    assert open_sealed(private, sealed, CONTEXT) == plaintext


def test_sealing_twice_differs(user: tuple[bytes, WrappedKey], private: X25519PrivateKey) -> None:
    one, two = seal(user[0], b"share", CONTEXT), seal(user[0], b"share", CONTEXT)
    assert one != two
    assert open_sealed(private, one, CONTEXT) == open_sealed(private, two, CONTEXT) == b"share"


def test_wrong_context_is_unauthorized(
    user: tuple[bytes, WrappedKey], private: X25519PrivateKey
) -> None:
    sealed = seal(user[0], b"share", CONTEXT)
    with pytest.raises(Unauthorized):
        open_sealed(private, sealed, b"j0123456789abcdef01234568")


def test_another_users_key_is_unauthorized(user: tuple[bytes, WrappedKey]) -> None:
    sealed = seal(user[0], b"share", CONTEXT)
    with pytest.raises(Unauthorized):
        open_sealed(X25519PrivateKey.generate(), sealed, CONTEXT)


@pytest.mark.parametrize("cut", [0, 10, 32, 40])
def test_truncated_or_garbled_box_is_unauthorized(private: X25519PrivateKey, cut: int) -> None:
    sealed = seal(public_bytes(private), b"share", CONTEXT)
    with pytest.raises(Unauthorized):
        open_sealed(private, sealed[:cut], CONTEXT)
    garbled = bytearray(sealed)
    garbled[cut] ^= 0x80
    with pytest.raises(Unauthorized):
        open_sealed(private, bytes(garbled), CONTEXT)
