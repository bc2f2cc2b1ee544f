"""A user's X25519 key pair, its private half wrapped under the password, and sealing.

The private key is stored only wrapped: ChaCha20-Poly1305 under a key derived from the
password with Argon2id (`ARGON2ID`: 64 MiB, 2 passes, 1 lane — about half a second on a
Raspberry Pi 4; keys wrapped before it use scrypt, n=2^15, and still open, and
`needs_rewrap` says a key should be wrapped again with the current cost). The user's
share of each job is sealed to the public key (ephemeral X25519 + HKDF-SHA256 +
ChaCha20-Poly1305), so only the password opens it.

Every key derivation goes through one gate per process (`GATE`: `KDF_CONCURRENCY` at
once, `KDF_QUEUE` callers waiting at most `KDF_WAIT` seconds; anyone else gets `KdfBusy`,
a 503 with Retry-After), so a storm of sign-ins costs at most that many derivations'
memory. No derivation runs at import.
"""

from __future__ import annotations

import base64
import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from appliance.errors import Unauthorized, Unavailable

ARGON2ID = "argon2id"
SCRYPT = "scrypt"
# The current cost: m in KiB, t passes, p lanes (see bench/kdf.py for the figures).
ARGON2_COST = {"m": 64 * 1024, "t": 2, "p": 1}
# The cost of keys wrapped before Argon2id (their dicts have no "kdf" field).
SCRYPT_COST = {"n": 2**15, "r": 8, "p": 1}
_COST_FIELDS = {ARGON2ID: ("m", "t", "p"), SCRYPT: ("n", "r", "p")}
# Bounds on a stored cost, so that a malformed record cannot ask for gigabytes.
_MAX_COST = {ARGON2ID: {"m": 1024 * 1024, "t": 64, "p": 16}, SCRYPT: {"n": 2**20, "r": 32, "p": 16}}

KDF_CONCURRENCY = 2  # derivations at once in this process
KDF_QUEUE = 8  # callers that may wait for a turn; more are refused at once
KDF_WAIT = 1.5  # seconds a caller waits for its turn before KdfBusy
KDF_RETRY_AFTER = 2  # seconds, what a refused caller is told to wait

_RAW = serialization.Encoding.Raw
_PUBLIC_RAW = serialization.PublicFormat.Raw
_PRIVATE_RAW = serialization.PrivateFormat.Raw
_NOENC = serialization.NoEncryption()
_AAD = b"meshprint user key"


class KdfBusy(Unavailable):
    """Too many password checks at once on this node: try again in a moment."""

    retry_after = KDF_RETRY_AFTER


class WrongPassword(Unauthorized):
    """The password does not open the key (or the user does not exist: the same error)."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class WrappedKey:
    """A private key sealed under a password-derived key: the KDF (`argon2id`, or `scrypt`
    for keys made before it), its cost, salt, nonce and ciphertext (base64)."""

    kdf: str
    cost: dict[str, int]
    salt: str
    nonce: str
    sealed: str

    def to_dict(self) -> dict[str, object]:
        """The directory form: {"kdf", cost fields..., "salt", "nonce", "sealed"}."""
        return {
            "kdf": self.kdf,
            **self.cost,
            "salt": self.salt,
            "nonce": self.nonce,
            "sealed": self.sealed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WrappedKey:
        """From the directory form; a dict without "kdf" is a scrypt-era key."""
        try:
            kdf = str(data.get("kdf", SCRYPT))
            fields = _COST_FIELDS[kdf]
            cost = {name: data[name] for name in fields}
            if not all(
                isinstance(v, int) and not isinstance(v, bool) and 0 < v <= _MAX_COST[kdf][k]
                for k, v in cost.items()
            ):
                raise ValueError(cost)
            return cls(kdf, cost, str(data["salt"]), str(data["nonce"]), str(data["sealed"]))
        except (KeyError, ValueError, TypeError):
            raise Unauthorized("this user's key record is malformed") from None


def needs_rewrap(wrapped: WrappedKey) -> bool:
    """Whether the key is wrapped with an older KDF or a lower cost than the current one."""
    return wrapped.kdf != ARGON2ID or any(wrapped.cost[k] < ARGON2_COST[k] for k in ("m", "t"))


def derive(kdf: str, cost: dict[str, int], password: str, salt: bytes) -> bytes:
    """The 32-byte key `kdf` derives from `password` at `cost` (no gate: `bench/` times it)."""
    secret = password.encode("utf-8")
    if kdf == ARGON2ID:
        return Argon2id(
            salt=salt, length=32, iterations=cost["t"], lanes=cost["p"], memory_cost=cost["m"]
        ).derive(secret)
    return Scrypt(salt=salt, length=32, n=cost["n"], r=cost["r"], p=cost["p"]).derive(secret)


class KdfGate:
    """At most `concurrency` derivations at once; at most `queue` callers wait for a turn,
    each for at most `wait` seconds. Anyone else is refused at once (KdfBusy): a caller
    that could not be served within the wait anyway gets its answer now and frees its
    connection, which keeps a storm's memory to the derivations themselves."""

    def __init__(self, concurrency: int, queue: int, wait: float) -> None:
        self.wait = wait
        self.queue = queue
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._waiting = 0

    def _busy(self) -> KdfBusy:
        return KdfBusy("this node is busy checking other passwords: try again in a moment")

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        if not self._slots.acquire(blocking=False):
            with self._lock:
                if self._waiting >= self.queue:
                    raise self._busy()
                self._waiting += 1
            try:
                got = self._slots.acquire(timeout=self.wait)
            finally:
                with self._lock:
                    self._waiting -= 1
            if not got:
                raise self._busy()
        try:
            yield
        finally:
            self._slots.release()


GATE = KdfGate(KDF_CONCURRENCY, KDF_QUEUE, KDF_WAIT)


def _kek(kdf: str, cost: dict[str, int], password: str, salt: bytes) -> bytes:
    """The key-encryption key, computed when the gate gives this caller a turn."""
    with GATE.turn():
        return derive(kdf, cost, password, salt)


def wrap_secret(secret: bytes, password: str, context: bytes) -> WrappedKey:
    """`secret` wrapped under `password` with the current KDF and cost, bound to
    `context` (what it is: the same must be given to unwrap it)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    cost = dict(ARGON2_COST)
    kek = _kek(ARGON2ID, cost, password, salt)
    sealed = ChaCha20Poly1305(kek).encrypt(nonce, secret, context)
    return WrappedKey(ARGON2ID, cost, b64(salt), b64(nonce), b64(sealed))


def unwrap_secret(wrapped: WrappedKey, password: str, context: bytes) -> bytes:
    """What `wrap_secret` wrapped, or WrongPassword (KdfBusy when the node is checking
    too many passwords at once)."""
    kek = _kek(wrapped.kdf, wrapped.cost, password, unb64(wrapped.salt))
    try:
        return ChaCha20Poly1305(kek).decrypt(unb64(wrapped.nonce), unb64(wrapped.sealed), context)
    except InvalidTag:
        raise WrongPassword("wrong user name or password") from None


def wrap_private_key(private: X25519PrivateKey, password: str) -> WrappedKey:
    """Wrap under `password` with the current KDF and cost."""
    return wrap_secret(private.private_bytes(_RAW, _PRIVATE_RAW, _NOENC), password, _AAD)


def create_user_key(password: str) -> tuple[bytes, WrappedKey]:
    """A new key pair: (raw public key, private key wrapped under `password`). The caller
    checks the password against the policy (`password_policy.check_password`)."""
    private = X25519PrivateKey.generate()
    return public_bytes(private), wrap_private_key(private, password)


def public_bytes(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(_RAW, _PUBLIC_RAW)


def unwrap_private_key(wrapped: WrappedKey, password: str) -> X25519PrivateKey:
    """The private key, or Unauthorized when the password is wrong (KdfBusy when the node
    is checking too many passwords at once)."""
    return X25519PrivateKey.from_private_bytes(unwrap_secret(wrapped, password, _AAD))


def _box_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_public + recipient_public,
        info=b"meshprint sealed box",
    ).derive(shared)


def seal(recipient_public: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt to a public key: ephemeral public key (32 bytes) || ciphertext."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = public_bytes(ephemeral)
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    key = _box_key(shared, ephemeral_public, recipient_public)
    return ephemeral_public + ChaCha20Poly1305(key).encrypt(bytes(12), plaintext, context)


def open_sealed(private: X25519PrivateKey, sealed: bytes, context: bytes) -> bytes:
    """Decrypt what `seal` made for this key; Unauthorized when it was not sealed to it."""
    ephemeral_public, body = sealed[:32], sealed[32:]
    try:
        shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _box_key(shared, ephemeral_public, public_bytes(private))
        return ChaCha20Poly1305(key).decrypt(bytes(12), body, context)
    except (InvalidTag, ValueError):
        raise Unauthorized("this share was not sealed to this user") from None
