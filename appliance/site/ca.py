"""The site certificate authority: node certificates and the controller's signature.

ECDSA P-256 throughout (fast on a Pi, understood by OpenSSL, Mosquitto and browsers).
The controller (the first super node) holds the CA key; every node holds the CA
certificate, its own key and a certificate whose common name is its node id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.errors import Forbidden

CA_YEARS = 20
NODE_YEARS = 5
_SHA256 = hashes.SHA256()


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def load_cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER form, hex."""
    return cert.fingerprint(_SHA256).hex()


def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the public key's DER SubjectPublicKeyInfo, hex: what a member's record
    pins, so a certificate minted with the CA key for its name and serial but another key
    is not that member."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def serial_hex(cert: x509.Certificate) -> str:
    return format(cert.serial_number, "x")


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def host_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Subject alternative names: an IP address entry for an address, else a DNS name."""
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return list(dict.fromkeys(names))


def build_certificate(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    signing_key: ec.EllipticCurvePrivateKey,
    days: int,
    extensions: Iterable[tuple[x509.ExtensionType, bool]] = (),
) -> x509.Certificate:
    """A certificate valid from five minutes ago (clock skew) for `days`, with a random
    serial and these (extension, critical) pairs, signed with SHA-256."""
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical)
    return builder.sign(signing_key, _SHA256)


def self_signed(
    common_name: str, hosts: Iterable[str], days: int
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and a self-signed server certificate for these host names and addresses
    (tools and tests; node certificates come from `SiteCA.issue`)."""
    key = new_key()
    name = _name(common_name)
    alt = x509.SubjectAlternativeName(host_names(hosts))
    return key, build_certificate(name, key.public_key(), name, key, days, [(alt, False)])


class SiteCA:
    """The CA certificate, and the key where this node is the controller."""

    def __init__(self, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None) -> None:
        self.cert = cert
        self.key = key

    @classmethod
    def create(cls, site_name: str) -> SiteCA:
        key = new_key()
        name = _name(f"meshprint {site_name} CA")
        usage = x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=True,
            crl_sign=True,
            encipher_only=False,
            decipher_only=False,
        )
        extensions: list[tuple[x509.ExtensionType, bool]] = [
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (usage, True),
            (x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False),
        ]
        cert = build_certificate(name, key.public_key(), name, key, 365 * CA_YEARS, extensions)
        return cls(cert, key)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The CA's public key, from its certificate: ECDSA P-256 like every site key."""
        public = self.cert.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        return public

    def issue(
        self, public_key: ec.EllipticCurvePublicKey, node_id: str, hosts: list[str]
    ) -> x509.Certificate:
        """A node certificate (client and server auth) with `node_id` as its name."""
        if self.key is None:
            raise Forbidden("only the site controller can issue certificates")
        usage = x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        )
        extensions: list[tuple[x509.ExtensionType, bool]] = [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.SubjectAlternativeName(host_names([node_id, "localhost", *hosts])), False),
            (usage, False),
            (x509.AuthorityKeyIdentifier.from_issuer_public_key(self.public_key), False),
        ]
        return build_certificate(
            _name(node_id), public_key, self.cert.subject, self.key, 365 * NODE_YEARS, extensions
        )

    def sign(self, data: bytes) -> bytes:
        if self.key is None:
            raise Forbidden("only the site controller can sign the site directory or commands")
        return self.key.sign(data, ec.ECDSA(_SHA256))

    def verify(self, data: bytes, signature: bytes) -> None:
        """Raise Forbidden unless `signature` over `data` is the controller's."""
        try:
            self.public_key.verify(signature, data, ec.ECDSA(_SHA256))
        except InvalidSignature:
            raise Forbidden("signature is not the site controller's") from None


def csr_for(key: ec.EllipticCurvePrivateKey, node_id: str) -> bytes:
    """A PEM certificate request proving possession of `key`."""
    csr = x509.CertificateSigningRequestBuilder().subject_name(_name(node_id)).sign(key, _SHA256)
    return csr.public_bytes(serialization.Encoding.PEM)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
