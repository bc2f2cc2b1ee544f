"""appliance.site.ca: the site CA, node certificates and controller signatures."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.errors import Forbidden
from appliance.site.ca import (
    SiteCA,
    cert_pem,
    common_name,
    csr_for,
    fingerprint,
    key_pem,
    load_cert,
    load_key,
    new_key,
    serial_hex,
    write_private,
)

NODE_ID = "n-3f2a9c"


@pytest.fixture(scope="module")
def node_cert(ca: SiteCA) -> x509.Certificate:
    return ca.issue(new_key().public_key(), NODE_ID, ["192.168.1.20", "printer.local", "::1"])


def test_ca_certificate_is_a_ca(ca: SiteCA) -> None:
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    assert common_name(ca.cert) == "meshprint test CA"
    ca.cert.verify_directly_issued_by(ca.cert)  # self-signed
    assert ca.fingerprint == fingerprint(ca.cert)
    assert len(ca.fingerprint) == 64


def test_node_certificate_names_the_node(ca: SiteCA, node_cert: x509.Certificate) -> None:
    assert common_name(node_cert) == NODE_ID
    assert node_cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NODE_ID
    san = node_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = san.get_values_for_type(x509.DNSName)
    assert NODE_ID in dns
    assert "localhost" in dns
    assert "printer.local" in dns
    assert ipaddress.ip_address("192.168.1.20") in san.get_values_for_type(x509.IPAddress)
    assert ipaddress.ip_address("::1") in san.get_values_for_type(x509.IPAddress)
    assert node_cert.issuer == ca.cert.subject


def test_node_certificate_verifies_against_the_ca(
    ca: SiteCA, other_ca: SiteCA, node_cert: x509.Certificate
) -> None:
    node_cert.verify_directly_issued_by(ca.cert)
    with pytest.raises(ValueError, match=r"(?i)issuer"):
        node_cert.verify_directly_issued_by(other_ca.cert)
    impostor = SiteCA.create("test")  # same name as the site CA, different key
    assert impostor.cert.subject == ca.cert.subject
    with pytest.raises(InvalidSignature):
        node_cert.verify_directly_issued_by(impostor.cert)


def test_node_certificate_is_for_client_and_server_not_a_ca(
    node_cert: x509.Certificate,
) -> None:
    constraints = node_cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is False
    usages = node_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usages
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages


def test_serials_are_unique(ca: SiteCA, node_cert: x509.Certificate) -> None:
    again = ca.issue(new_key().public_key(), NODE_ID, [])
    assert serial_hex(again) != serial_hex(node_cert)
    assert int(serial_hex(again), 16) == again.serial_number


def test_duplicate_hosts_do_not_break_issue(ca: SiteCA) -> None:
    cert = ca.issue(new_key().public_key(), NODE_ID, ["localhost", NODE_ID, "10.0.0.1", "10.0.0.1"])
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName).count(NODE_ID) == 1
    assert len(san.get_values_for_type(x509.IPAddress)) == 1


def test_sign_and_verify(ca: SiteCA) -> None:
    signature = ca.sign(b"directory v1")
    ca.verify(b"directory v1", signature)
    with pytest.raises(Forbidden, match="not the site controller's"):
        ca.verify(b"directory v2", signature)


def test_signature_from_another_ca_is_forbidden(ca: SiteCA, other_ca: SiteCA) -> None:
    with pytest.raises(Forbidden):
        ca.verify(b"directory v1", other_ca.sign(b"directory v1"))


@pytest.mark.parametrize("signature", [b"", b"garbage", bytes(72)])
def test_malformed_signature_is_forbidden(ca: SiteCA, signature: bytes) -> None:
    with pytest.raises(Forbidden):
        ca.verify(b"directory v1", signature)


def test_ca_without_key_can_verify_but_not_sign_or_issue(ca: SiteCA) -> None:
    public_only = SiteCA(ca.cert, None)
    public_only.verify(b"data", ca.sign(b"data"))
    with pytest.raises(Forbidden):
        public_only.sign(b"data")
    with pytest.raises(Forbidden):
        public_only.issue(new_key().public_key(), NODE_ID, [])


def test_pem_files_round_trip(tmp_path: Path, ca: SiteCA) -> None:
    key = new_key()
    write_private(tmp_path / "node.key", key_pem(key))
    (tmp_path / "ca.pem").write_bytes(cert_pem(ca.cert))
    assert (tmp_path / "node.key").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "node.key.tmp").exists()
    loaded = load_key(tmp_path / "node.key")
    assert loaded.private_numbers() == key.private_numbers()
    assert load_cert(tmp_path / "ca.pem") == ca.cert


def test_csr_proves_possession_and_names_the_node() -> None:
    key = new_key()
    csr = x509.load_pem_x509_csr(csr_for(key, NODE_ID))
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == NODE_ID
    public = csr.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.public_numbers() == key.public_key().public_numbers()
