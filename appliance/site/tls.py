"""TLS contexts: mutual TLS between members, server-only TLS for clients.

Node-to-node calls name the peer by its node id (the certificate's common name and a
DNS name in it), so a node always knows which member answered, whatever its address.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.errors import Forbidden
from appliance.site.ca import key_fingerprint, serial_hex


def _base(purpose: int) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def server_context(cert_chain: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """Serve with the node certificate; with `client_ca`, require a client certificate."""
    ctx = _base(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_chain, key)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def peer_client_context(cert_chain: Path, key: Path, ca: Path) -> ssl.SSLContext:
    """Call a member: present our certificate, check theirs against the site CA and node id."""
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_cert_chain(cert_chain, key)
    ctx.load_verify_locations(cafile=str(ca))
    return ctx


def client_context(ca: Path | None) -> ssl.SSLContext:
    """A user's client: trust only the site CA (any member may answer, whatever its address)."""
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT)
    if ca is None:
        ctx.load_default_certs()
    else:
        ctx.load_verify_locations(cafile=str(ca))
        ctx.check_hostname = False
    return ctx


def unverified_context() -> ssl.SSLContext:
    """Only to fetch the CA certificate when joining; the caller checks its fingerprint."""
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class CertIdentity(NamedTuple):
    """Who a peer certificate says it is: the node id, the serial, the key's fingerprint."""

    node_id: str
    serial: str
    key: str


def cert_identity(der: bytes | None) -> CertIdentity:
    """The identity in a peer certificate (DER, as ssl's getpeercert(binary_form=True)
    gives it); Forbidden when there is none or it names no node."""
    if not der:
        raise Forbidden("a site member certificate is required")
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        public = cert.public_key()
    except ValueError:
        raise Forbidden("the certificate cannot be read") from None
    if not names or not isinstance(public, ec.EllipticCurvePublicKey):
        raise Forbidden("the certificate names no node")
    return CertIdentity(str(names[0].value), serial_hex(cert), key_fingerprint(public))
