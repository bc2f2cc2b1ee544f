"""The release authority: the key that signs password-less release commands, apart from
the site CA.

It is made at `site create` and kept only sealed under the recovery key, in the directory
(`release_authority`) beside its public key. Nodes verify release commands with that
public key, and never adopt a directory version that changes or drops it (`check_kept`),
so the CA key, which the controller keeps on its disk to sign routine directory
versions, cannot make a release command. An administrator unlocks it for one command
with the recovery key (`unlock`). A site made before there was a release authority
verifies commands with the CA until `meshprint site recovery-key` makes one.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.crypto.userkeys import b64, unb64
from appliance.errors import Forbidden
from appliance.site import recovery
from appliance.site.ca import SiteCA, key_pem, new_key

FIELD = "release_authority"
_SHA256 = hashes.SHA256()


class Signer(Protocol):
    """What signs a release command: the release authority (or, on an older site, the CA)."""

    def sign(self, data: bytes) -> bytes: ...


class ReleaseAuthority:
    """The unlocked key; it lives in memory for one command."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key

    @classmethod
    def create(cls) -> ReleaseAuthority:
        return cls(new_key())

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data, ec.ECDSA(_SHA256))


def _public_der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def sealed_entries(
    ca: SiteCA, authority: ReleaseAuthority, site_id: str, recovery_key: str
) -> dict[str, dict[str, str]]:
    """What the directory keeps sealed under the recovery key: the CA key (`recovery`)
    and the release authority (`release_authority`)."""
    return {
        "recovery": recovery.seal_authority(ca, site_id, recovery_key),
        FIELD: entry_for(authority, site_id, recovery_key),
    }


def entry_for(authority: ReleaseAuthority, site_id: str, recovery_key: str) -> dict[str, str]:
    """The directory entry: the public key, and the key sealed under the recovery key."""
    public = _public_der(authority.key.public_key())
    sealed = recovery.seal(recovery_key, site_id, key_pem(authority.key), public)
    return {"public": b64(public), **sealed}


def _public(doc: dict[str, Any]) -> bytes | None:
    entry = doc.get(FIELD)
    return unb64(str(entry["public"])) if isinstance(entry, dict) else None


def _signed_by(public: bytes, data: bytes, signature: bytes) -> bool:
    key = serialization.load_der_public_key(public)
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(signature, data, ec.ECDSA(_SHA256))
    except InvalidSignature:
        return False
    return True


def unlock(doc: dict[str, Any], site_id: str, recovery_key: str) -> ReleaseAuthority:
    """The release authority of the directory `doc`, opened with the recovery key."""
    public = _public(doc)
    if public is None:
        raise Forbidden(
            "this site has no release authority yet: run 'meshprint site recovery-key' on "
            "the controller"
        )
    pem = recovery.unseal(doc[FIELD], recovery_key, site_id, public)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or _public_der(key.public_key()) != public:
        raise Forbidden("the sealed release authority does not match its public key")
    return ReleaseAuthority(key)


def verify(doc: dict[str, Any], ca: SiteCA, data: bytes, signature: bytes) -> None:
    """Forbidden unless the release authority of `doc` signed `data` (on a site without
    one yet, the CA)."""
    public = _public(doc)
    if public is None:
        ca.verify(data, signature)
    elif not _signed_by(public, data, signature):
        raise Forbidden("the release command is not signed by the site's release authority")


_VOUCH = b"meshprint vouch v1\n"


def _vouched_bytes(record: dict[str, Any]) -> bytes:
    keys = ("id", "cert_serial", "key_sha256", "point")
    return _VOUCH + json.dumps([record.get(k) for k in keys]).encode()


def vouch(authority: ReleaseAuthority, record: dict[str, Any]) -> str:
    """The release authority's word that the member `record` (a directory node entry) is
    the administrator's own: it may take copies of jobs held before it joined (a restored
    controller); base64, for the record's `vouched` field."""
    return b64(authority.sign(_vouched_bytes(record)))


def is_vouched(doc: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether the release authority of `doc` vouched for `record` (as it is now)."""
    public, signature = _public(doc), record.get("vouched")
    if public is None or not isinstance(signature, str):
        return False
    try:
        return _signed_by(public, _vouched_bytes(record), unb64(signature))
    except ValueError:  # not base64
        return False


def check_kept(current: dict[str, Any], incoming: dict[str, Any]) -> None:
    """Forbidden when `incoming` changes or drops the release authority `current` has:
    the CA key alone must never be able to put its own in."""
    public = _public(current)
    if public is not None and _public(incoming) != public:
        raise Forbidden("this directory version changes the site's release authority: refused")
