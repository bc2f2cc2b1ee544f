"""The site's recovery key: what makes the appliance replaceable.

At `site create` the controller makes a random recovery key (125 bits, shown once, for
the administrator to keep on paper or in a password manager) and seals the site
authority (the CA key) under it into the signed directory, so every member carries
the sealed copy. A new appliance restores the controller role from any surviving member
plus that key (`restore.py`); no member can open the copy without it.

The key is random, not a password: HKDF suffices and guessing it is hopeless, so the
sealed copy on every member's disk gives nothing to an offline guesser.
"""

from __future__ import annotations

import hmac
import os
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Forbidden, Unauthorized
from appliance.site.ca import SiteCA, key_pem, sha256_hex

GROUPS, GROUP_SIZE = 5, 5  # 25 base32 characters: 125 bits
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_LOOKALIKES = str.maketrans("018", "OIB")  # digits base32 leaves out, read as letters
_INFO = b"meshprint site recovery"
_PROOF_INFO = b"meshprint recovery proof"


def new_recovery_key() -> str:
    """A fresh key, as the administrator sees it: XXXXX-XXXXX-XXXXX-XXXXX-XXXXX."""
    text = "".join(secrets.choice(_ALPHABET) for _ in range(GROUPS * GROUP_SIZE))
    return "-".join(text[i : i + GROUP_SIZE] for i in range(0, len(text), GROUP_SIZE))


def normalise(text: str) -> str:
    """The key as typed (any case, with or without dashes and spaces, 0/1/8 for O/I/B),
    checked."""
    plain = "".join(text.split()).replace("-", "").upper().translate(_LOOKALIKES)
    if len(plain) != GROUPS * GROUP_SIZE or any(c not in _ALPHABET for c in plain):
        raise BadRequest(
            f"a recovery key is {GROUPS} groups of {GROUP_SIZE} letters and digits 2-7, "
            "as shown when the site was created (XXXXX-XXXXX-XXXXX-XXXXX-XXXXX)"
        )
    return plain


def _aead(recovery_key: str, salt: bytes, site_id: str) -> ChaCha20Poly1305:
    secret = normalise(recovery_key).encode("ascii")
    key = HKDF(hashes.SHA256(), 32, salt, _INFO + site_id.encode()).derive(secret)
    return ChaCha20Poly1305(key)


def proof(recovery_key: str) -> str:
    """What a restoring node shows a member to be given the directory: derived from the
    key one way, so whoever sees it (a member, someone in the middle) cannot open the
    sealed authority with it."""
    secret = normalise(recovery_key).encode("ascii")
    return HKDF(hashes.SHA256(), 32, None, _PROOF_INFO).derive(secret).hex()


def check_proof(entry: Any, shown: str) -> None:
    """Unauthorized unless `shown` is the proof of this site's recovery key."""
    expected = entry.get("proof_hash") if isinstance(entry, dict) else None
    if not isinstance(expected, str) or not hmac.compare_digest(
        sha256_hex(shown.encode()), expected
    ):
        raise Unauthorized("that is not this site's recovery key")


def seal(recovery_key: str, site_id: str, secret: bytes, bound_to: bytes) -> dict[str, str]:
    """`secret` sealed under the recovery key for this site; `bound_to` (what it belongs
    to, e.g. the CA's fingerprint) must be given again to open it."""
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = _aead(recovery_key, salt, site_id).encrypt(nonce, secret, bound_to)
    return {"salt": b64(salt), "nonce": b64(nonce), "sealed": b64(sealed)}


def unseal(entry: Any, recovery_key: str, site_id: str, bound_to: bytes) -> bytes:
    """What `seal` sealed; Unauthorized when the key does not open it."""
    try:
        salt, nonce, sealed = (unb64(str(entry[k])) for k in ("salt", "nonce", "sealed"))
    except (KeyError, ValueError, TypeError):
        raise Forbidden("the site's sealed copy is damaged") from None
    try:
        return _aead(recovery_key, salt, site_id).decrypt(nonce, sealed, bound_to)
    except InvalidTag:
        raise Unauthorized("this recovery key does not open this site's recovery copy") from None


def seal_authority(ca: SiteCA, site_id: str, recovery_key: str) -> dict[str, str]:
    """The CA key sealed under the recovery key, bound to this site and CA, as the
    directory's `recovery` entry."""
    if ca.key is None:
        raise Forbidden("only the site controller holds the site authority")
    return {
        **seal(recovery_key, site_id, key_pem(ca.key), ca.fingerprint.encode()),
        "ca": ca.fingerprint,
        "proof_hash": sha256_hex(proof(recovery_key).encode()),
    }


def open_authority(entry: Any, ca: SiteCA, site_id: str, recovery_key: str) -> SiteCA:
    """The site CA with its key, from the directory's `recovery` entry; Unauthorized when
    the key does not open it."""
    if not isinstance(entry, dict):
        raise Forbidden(
            "this site has no recovery copy of its authority (made before recovery keys, "
            "and 'meshprint site recovery-key' was never run): it cannot be restored"
        )
    if entry.get("ca") != ca.fingerprint:
        raise Forbidden("the recovery copy belongs to another site CA")
    pem = unseal(entry, recovery_key, site_id, ca.fingerprint.encode())
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != ca.public_key:
        raise Forbidden("the recovery copy does not hold this site's CA key")
    return SiteCA(ca.cert, key)
