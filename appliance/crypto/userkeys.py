"""A user's X25519 key pair, its private half wrapped under the password, and sealing.

The private key is stored only wrapped: ChaCha20-Poly1305 under a key derived from the
password with scrypt. The user's share of each job is sealed to the public key
(ephemeral X25519 + HKDF-SHA256 + ChaCha20-Poly1305), so only the password opens it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import asdict, dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from appliance.errors import MeshprintError, Unauthorized

SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
MIN_PASSWORD_LENGTH = 8
_RAW = serialization.Encoding.Raw
_PUBLIC_RAW = serialization.PublicFormat.Raw
_PRIVATE_RAW = serialization.PrivateFormat.Raw
_NOENC = serialization.NoEncryption()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class WrappedKey:
    """A private key sealed under a password-derived key (all fields base64 or ints)."""

    salt: str
    n: int
    r: int
    p: int
    nonce: str
    sealed: str

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> WrappedKey:
        return cls(**data)  # type: ignore[arg-type]


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise MeshprintError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def _kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


def wrap_private_key(private: X25519PrivateKey, password: str) -> WrappedKey:
    salt, nonce = os.urandom(16), os.urandom(12)
    kek = _kek(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    raw = private.private_bytes(_RAW, _PRIVATE_RAW, _NOENC)
    sealed = ChaCha20Poly1305(kek).encrypt(nonce, raw, b"meshprint user key")
    return WrappedKey(b64(salt), SCRYPT_N, SCRYPT_R, SCRYPT_P, b64(nonce), b64(sealed))


def create_user_key(password: str) -> tuple[bytes, WrappedKey]:
    """A new key pair: (raw public key, private key wrapped under `password`)."""
    check_password(password)
    private = X25519PrivateKey.generate()
    return public_bytes(private), wrap_private_key(private, password)


def public_bytes(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(_RAW, _PUBLIC_RAW)


def unwrap_private_key(wrapped: WrappedKey, password: str) -> X25519PrivateKey:
    """The private key, or Unauthorized when the password is wrong."""
    kek = _kek(password, unb64(wrapped.salt), wrapped.n, wrapped.r, wrapped.p)
    try:
        raw = ChaCha20Poly1305(kek).decrypt(
            unb64(wrapped.nonce), unb64(wrapped.sealed), b"meshprint user key"
        )
    except InvalidTag:
        raise Unauthorized("wrong user name or password") from None
    return X25519PrivateKey.from_private_bytes(raw)


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
