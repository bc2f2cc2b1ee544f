"""appliance.crypto.userkeys: password-wrapped X25519 keys and sealing to a public key."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto import userkeys
from appliance.crypto.userkeys import (
    KdfBusy,
    WrappedKey,
    WrongPassword,
    create_user_key,
    needs_rewrap,
    open_sealed,
    public_bytes,
    seal,
    unb64,
    unwrap_private_key,
)
from appliance.errors import Unauthorized
from tests.fixtures.legacy_keys import scrypt_wrapped

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
    assert wrapped.kdf == "argon2id"
    assert wrapped.cost == userkeys.ARGON2_COST
    assert wrapped.to_dict()["m"] == 64 * 1024
    assert not needs_rewrap(wrapped)
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


def test_a_scrypt_era_record_still_opens_and_needs_rewrapping() -> None:
    private = X25519PrivateKey.generate()
    old = WrappedKey.from_dict(scrypt_wrapped(private, PASSWORD, n=2**10))
    assert (old.kdf, old.cost) == ("scrypt", {"n": 2**10, "r": 8, "p": 1})
    assert public_bytes(unwrap_private_key(old, PASSWORD)) == public_bytes(private)
    with pytest.raises(WrongPassword):
        unwrap_private_key(old, PASSWORD + "!")
    assert needs_rewrap(old)


@pytest.mark.parametrize("weaker", [{"m": 8 * 1024}, {"t": 1}])
def test_a_weaker_argon2id_cost_needs_rewrapping(
    monkeypatch: pytest.MonkeyPatch, weaker: dict[str, int]
) -> None:
    monkeypatch.setattr(userkeys, "ARGON2_COST", {**userkeys.ARGON2_COST, **weaker})
    wrapped = userkeys.wrap_private_key(X25519PrivateKey.generate(), PASSWORD)
    monkeypatch.undo()
    assert wrapped.cost != userkeys.ARGON2_COST
    assert needs_rewrap(wrapped)


@pytest.mark.parametrize(
    "change",
    [
        {"kdf": "md5"},
        {"m": 2**40},  # would ask for a petabyte
        {"t": 0},
        {"m": "65536"},
        {"m": True},
        {"salt": None, "nonce": None, "sealed": None, "m": None},
    ],
)
def test_a_malformed_record_is_refused_without_a_kdf_run(
    user: tuple[bytes, WrappedKey], change: dict[str, object]
) -> None:
    record = {**user[1].to_dict(), **change}
    record = {k: v for k, v in record.items() if v is not None}
    with pytest.raises(Unauthorized, match="malformed"):
        WrappedKey.from_dict(record)


def test_at_most_kdf_concurrency_run_a_few_wait_the_rest_are_refused_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def slow_derive(kdf: str, cost: object, password: str, salt: bytes) -> bytes:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        return hashlib.sha256(password.encode() + salt).digest()

    monkeypatch.setattr(userkeys, "derive", slow_derive)
    monkeypatch.setattr(userkeys.GATE, "wait", 5.0)
    wrapped = userkeys.wrap_private_key(X25519PrivateKey.generate(), PASSWORD)
    outcomes: list[tuple[str, float]] = []
    start = threading.Barrier(20)

    def guess() -> None:
        start.wait()
        began = time.monotonic()
        try:
            unwrap_private_key(wrapped, "not it")
        except Unauthorized as err:
            outcomes.append((type(err).__name__, time.monotonic() - began))
        except KdfBusy as err:
            outcomes.append((type(err).__name__, time.monotonic() - began))

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak[0] == userkeys.KDF_CONCURRENCY == 2
    checked = [t for name, t in outcomes if name == "WrongPassword"]
    refused = [t for name, t in outcomes if name == "KdfBusy"]
    assert len(checked) == userkeys.KDF_CONCURRENCY + userkeys.KDF_QUEUE == 10
    assert len(refused) == 10 and max(refused) < 0.1  # told at once, not after a wait


def test_a_caller_waits_briefly_then_gets_busy_with_retry_after(
    monkeypatch: pytest.MonkeyPatch, user: tuple[bytes, WrappedKey]
) -> None:
    monkeypatch.setattr(userkeys.GATE, "wait", 0.2)
    slots = userkeys.GATE._slots
    held = [slots.acquire(timeout=1) for _ in range(userkeys.KDF_CONCURRENCY)]
    try:
        assert all(held)
        started = time.monotonic()
        with pytest.raises(KdfBusy) as caught:
            unwrap_private_key(user[1], PASSWORD)
        assert 0.15 < time.monotonic() - started < 1.0
    finally:
        for _ in held:
            slots.release()
    assert caught.value.status == 503 and caught.value.retry_after == userkeys.KDF_RETRY_AFTER
    assert public_bytes(unwrap_private_key(user[1], PASSWORD)) == user[0]  # free again


def test_importing_the_product_runs_no_kdf() -> None:
    """Starting a node, the CLI or the web UI derives no key at import (the decoy key is
    made at the first sign-in of an unknown user)."""
    code = textwrap.dedent(
        """
        from cryptography.hazmat.primitives.kdf import argon2, scrypt
        class Refuse:
            def __init__(self, *args, **kwargs):
                raise SystemExit("a KDF ran at import")
        argon2.Argon2id = scrypt.Scrypt = Refuse
        import appliance.node, appliance.cli, appliance.api.release, appliance.api.submit
        import appliance.jobs.release, appliance.site.admin, webui, webui.views.release
        print("no KDF")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and "no KDF" in done.stdout, done.stderr[-2000:]


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
