"""Where each member listens, as the member itself says: signed with its own node key.

A node's address (host and its three ports) is not part of what the site authority
signs: each node signs its own announcement with the key of its member certificate,
and every node checks it against that member's record in the signed directory (the
certificate is the site CA's, with the record's name and serial, its key the one the
record pins, not revoked). So the controller records addresses without the CA key, and
no one can move another member's address. The announcements travel beside the
directory (`MemberView.signed`); the newest (`at`) of each member wins.

An address is not what anyone trusts a member by (every call checks the certificate),
so an announcement only says where to knock.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Forbidden
from appliance.site.ca import SiteCA, cert_pem, common_name, key_fingerprint, serial_hex

FIELDS = ("host", "peer_port", "submit_port", "release_port")
CONTEXT = b"meshprint address v1\n"
MAX_HOST = 253
_SHA256 = hashes.SHA256()


def check_fields(address: Any) -> dict[str, Any]:
    """The four address fields of `address`, checked (BadRequest otherwise)."""
    try:
        fields = {key: address[key] for key in FIELDS}
    except (KeyError, TypeError):
        raise BadRequest("an address needs a host and three ports") from None
    ports = [fields[key] for key in FIELDS[1:]]
    host = fields["host"]
    if not (isinstance(host, str) and 0 < len(host) <= MAX_HOST) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports
    ):
        raise BadRequest("an address needs a host and three ports")
    return fields


@dataclass(frozen=True)
class Announcement:
    """One member's signed address (use `verify` for anything that came in)."""

    node_id: str
    serial: str
    key_sha256: str
    fields: dict[str, Any]
    at: float
    raw: bytes
    signature: bytes
    cert: bytes  # the member's certificate, PEM

    def to_wire(self) -> dict[str, str]:
        return {
            "raw": b64(self.raw),
            "signature": b64(self.signature),
            "cert": self.cert.decode("ascii"),
        }

    def applies_to(self, record: Mapping[str, Any], revoked: Iterable[str]) -> bool:
        """Whether this still speaks for the member `record` (a directory node entry):
        the same certificate serial, the pinned key (where one is pinned), not revoked."""
        return (
            record.get("cert_serial") == self.serial
            and self.serial not in set(revoked)
            and record.get("key_sha256") in (None, self.key_sha256)
        )


def sign(
    site_id: str,
    node_id: str,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    address: Mapping[str, Any],
    at: float,
) -> Announcement:
    """This node's announcement of `address`, signed with its own key."""
    fields = check_fields(address)
    body = {"site_id": site_id, "node_id": node_id, "serial": serial_hex(cert), "at": at, **fields}
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    signature = key.sign(CONTEXT + raw, ec.ECDSA(_SHA256))
    return _parse(raw, signature, cert_pem(cert))


def _parse(raw: bytes, signature: bytes, pem: bytes) -> Announcement:
    body = json.loads(raw)
    if not isinstance(body, dict):
        raise ValueError("not an object")
    cert = x509.load_pem_x509_certificate(pem)
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("not an EC key")
    at = body["at"]
    if not isinstance(at, int | float) or isinstance(at, bool):
        raise ValueError("bad time")
    return Announcement(
        node_id=str(body["node_id"]),
        serial=str(body["serial"]),
        key_sha256=key_fingerprint(public),
        fields=check_fields(body),
        at=float(at),
        raw=raw,
        signature=signature,
        cert=pem,
    )


def verify(
    wire: Any, ca: SiteCA, site_id: str, nodes: Mapping[str, Any], revoked: Iterable[str]
) -> Announcement:
    """An announcement that came in, once it is a current member's own (Forbidden
    otherwise): its certificate the site CA's, named and numbered as the member's record
    in `nodes` (the directory's node entries) says, with the pinned key, not revoked; its
    signature that certificate's key's."""
    try:
        raw, signature = unb64(str(wire["raw"])), unb64(str(wire["signature"]))
        found = _parse(raw, signature, str(wire["cert"]).encode("ascii"))
        cert = x509.load_pem_x509_certificate(found.cert)
        body = json.loads(raw)
    except (KeyError, TypeError, ValueError, UnicodeError, BadRequest):
        raise Forbidden("a malformed address announcement") from None
    record = nodes.get(found.node_id)
    if body.get("site_id") != site_id or record is None:
        raise Forbidden(f"an address announcement for no member of this site ({found.node_id})")
    if common_name(cert) != found.node_id or serial_hex(cert) != found.serial:
        raise Forbidden("an address announcement whose certificate is another node's")
    if not found.applies_to(record, revoked):
        raise Forbidden(f"an address announcement not signed by member {found.node_id}'s key")
    signature_hash = cert.signature_hash_algorithm
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)  # `_parse` checked
    try:
        if signature_hash is None:
            raise InvalidSignature
        ca.public_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(signature_hash))
        public.verify(signature, CONTEXT + raw, ec.ECDSA(_SHA256))
    except InvalidSignature:
        raise Forbidden(f"an address announcement not signed by member {found.node_id}") from None
    return found


def overlay(
    nodes: Mapping[str, Any], found: Mapping[str, Announcement], revoked: Iterable[str]
) -> dict[str, Any]:
    """The directory's node entries with each member's announced address in place of
    the one an older version of the directory recorded."""
    revoked = set(revoked)
    out = {}
    for node_id, record in nodes.items():
        announced = found.get(node_id)
        if announced is not None and announced.applies_to(record, revoked):
            record = {**record, **announced.fields}
        out[node_id] = record
    return out


def digest(found: Mapping[str, Announcement]) -> str:
    """A short summary of a set of announcements: two nodes with the same have the same."""
    text = "".join(f"{k}={found[k].at!r};" for k in sorted(found))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
