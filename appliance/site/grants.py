"""Join grants: what lets the controller admit a node it invited without reaching for
the CA key it keeps.

`invite` (an administrator acting) seals the CA key under a key derived from the join
token's secret, which only the token carries: the controller's database keeps the
secret's hash and this sealed copy, so neither opens without the token. At the join the
node shows the secret, the controller opens the copy for that one admission (the new
member's certificate and the directory version that adds it) and erases it, as it does
when the token is spent or expired. The secret is random (192 bits): HKDF suffices and
an offline guesser with the database has nothing to guess.
"""

from __future__ import annotations

import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.crypto.userkeys import b64, unb64
from appliance.errors import Forbidden, Unauthorized
from appliance.site.ca import SiteCA, key_pem

_INFO = b"meshprint join grant"


def _aead(secret: str, salt: bytes, site_id: str) -> ChaCha20Poly1305:
    key = HKDF(hashes.SHA256(), 32, salt, _INFO + site_id.encode()).derive(secret.encode())
    return ChaCha20Poly1305(key)


def seal(ca: SiteCA, secret: str, site_id: str) -> str:
    """The CA key sealed under the token secret, bound to this site and CA (as stored)."""
    if ca.key is None:
        raise Forbidden("only the site controller can invite a node")
    salt, nonce = os.urandom(16), os.urandom(12)
    sealed = _aead(secret, salt, site_id).encrypt(nonce, key_pem(ca.key), ca.fingerprint.encode())
    return json.dumps({"salt": b64(salt), "nonce": b64(nonce), "sealed": b64(sealed)})


def open_grant(stored: str, secret: str, ca: SiteCA, site_id: str) -> SiteCA:
    """The site CA with its key, from what `seal` stored; Unauthorized when `secret` does
    not open it."""
    try:
        entry = json.loads(stored)
        salt, nonce, sealed = (unb64(str(entry[k])) for k in ("salt", "nonce", "sealed"))
    except (KeyError, ValueError, TypeError):
        raise Forbidden(
            "this join token's grant is damaged: make a new one (meshprint invite)"
        ) from None
    try:
        pem = _aead(secret, salt, site_id).decrypt(nonce, sealed, ca.fingerprint.encode())
    except InvalidTag:
        raise Unauthorized("this join token is not valid for this site") from None
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != ca.public_key:
        raise Forbidden("this join token's grant is for another site CA")
    return SiteCA(ca.cert, key)
