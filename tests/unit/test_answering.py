"""Who answers a user's client: signed member lists, the newest-version rule, the per-user
cache that refuses a rollback, and the certificate check that refuses a removed node."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from appliance.clients.models import SignedDirectory
from appliance.errors import Forbidden, NotFound, Unavailable, UntrustedNode, from_wire
from appliance.site.answering import MemberCache, gather, member_check, newest, own_node_check
from appliance.site.ca import SiteCA, build_certificate, cert_pem, new_key
from appliance.site.directory import Directory, Membership, NodeRecord
from appliance.site.tls import CertIdentity, cert_identity

LAPTOP = "n-laptop"
LAPTOP_ADDRESS = ("10.0.0.9", 9266)
CONTROLLER_ADDRESS = ("127.0.0.1", 7003)


def _cert(node_id: str, serial: str) -> bytes:
    """A server certificate (DER) with this name and serial, as a handshake gives it."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
    cert = build_certificate(name, key.public_key(), name, key, 1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int(serial, 16))
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def laptop() -> NodeRecord:
    return NodeRecord(LAPTOP, "laptop", "edge", "a1b2c3", "machine-b", "10.0.0.9", 1, 2, 9266)


@pytest.fixture
def versions(ca: SiteCA, directory: Directory, laptop: NodeRecord) -> list[Directory]:
    """v1 the controller alone, v2 with the laptop, v3 the laptop removed and revoked."""

    def add(doc: dict[str, Any]) -> None:
        doc["nodes"][LAPTOP] = dataclasses.asdict(laptop)

    def remove(doc: dict[str, Any]) -> None:
        del doc["nodes"][LAPTOP]
        doc["revoked"] = [laptop.cert_serial]

    v2 = directory.edited(ca, add)
    return [directory, v2, v2.edited(ca, remove)]


def _members(versions: list[Directory]) -> list[Membership]:
    found = [v.membership() for v in versions]
    assert all(m is not None for m in found)
    return [m for m in found if m is not None]


def test_every_version_carries_its_member_list_signed_apart(
    ca: SiteCA, other_ca: SiteCA, versions: list[Directory]
) -> None:
    v1, v2, v3 = _members(versions)
    assert [m.version for m in (v1, v2, v3)] == [1, 2, 3]
    assert v2.is_member(CertIdentity(LAPTOP, "a1b2c3", "")) and not v3.is_member(
        CertIdentity(LAPTOP, "a1b2c3", "")
    )
    assert "a1b2c3" in v3.revoked
    # No users, no wrapped keys: anyone may have it.
    assert set(json.loads(v3.raw)) == {
        "site_id",
        "version",
        "issued_at",
        "controller",
        "nodes",
        "revoked",
    }
    assert Membership.from_wire(v3.signed(), ca).version == 3
    # Signed on its own: a member list is no directory (nor a release command), and a
    # directory's signature does not make a member list.
    with pytest.raises(Forbidden):
        Directory.verify(v3.raw, v3.signature, ca, None)
    with pytest.raises(Forbidden):
        Membership.verify(versions[2].raw, versions[2].signature, ca)
    # Tampered with, or signed by another CA: refused.
    forged = v3.raw.replace(b'"revoked":["a1b2c3"]', b'"revoked":[]')
    assert forged != v3.raw
    with pytest.raises(Forbidden):
        Membership.verify(forged, v3.signature, ca)
    with pytest.raises(Forbidden):
        Membership.from_wire(v3.signed(), other_ca)
    with pytest.raises(Forbidden):
        Membership.from_wire({"raw": "not base64!", "signature": ""}, ca)


def test_the_newest_version_wins(versions: list[Directory]) -> None:
    v1, v2, v3 = _members(versions)
    assert newest([None, v2, v3, v1]) is v3
    assert newest([v1, None]) is v1
    assert newest([]) is None


def test_the_cache_never_goes_back(ca: SiteCA, tmp_path: Path, versions: list[Directory]) -> None:
    v1, v2, v3 = _members(versions)
    cache = MemberCache(tmp_path / "cache", ca)
    assert cache.load() is None
    assert cache.remember(v2).version == 2
    assert cache.remember(v3).version == 3
    # A rollback (the removed laptop serving v2) is not taken: the newer list stays.
    assert cache.remember(v2).version == 3
    assert cache.remember(v1).version == 3
    found = cache.load()
    assert found is not None and found.version == 3
    # Another site's cache is another file.
    assert MemberCache(tmp_path / "cache", SiteCA.create("other")).load() is None
    # A cache file that does not verify is not used.
    cache.path.write_text(json.dumps({"raw": v3.signed()["raw"], "signature": "AAAA"}))
    assert cache.load() is None


def _answering(lists: dict[tuple[str, int], SignedDirectory | Exception]) -> Any:
    """A `connect` for `gather`: each address answers its member list or raises."""

    class Node:
        def __init__(self, answer: SignedDirectory | Exception) -> None:
            self.answer = answer

        def members(self) -> SignedDirectory:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    def connect(host: str, port: int) -> Node:
        return Node(lists.get((host, port), Unavailable(f"cannot reach {host}:{port}")))

    return connect


def test_a_removed_node_serving_its_old_list_is_refused(
    ca: SiteCA, tmp_path: Path, versions: list[Directory]
) -> None:
    _, v2, v3 = _members(versions)
    revoked_cert = _cert(LAPTOP, "a1b2c3")

    # The laptop serves v2 (where it is still a member); the controller, named there,
    # answers v3: the newest wins and the laptop is refused.
    lists: dict[tuple[str, int], SignedDirectory | Exception] = {
        LAPTOP_ADDRESS: v2.signed(),
        CONTROLLER_ADDRESS: v3.signed(),
    }
    cache = MemberCache(tmp_path, ca)
    found = gather(ca, LAPTOP_ADDRESS, _answering(lists), cache, "your password")
    assert found.version == 3
    check = member_check(lambda: found, "10.0.0.9:9266", "your password")
    with pytest.raises(UntrustedNode) as refused:
        check(revoked_cert)
    assert "not a current member of the site (revoked?): not sending your password" in str(
        refused.value
    )

    # Later the controller is unreachable and the laptop still serves v2: the cache has
    # v3, so the rollback is refused all the same.
    lists = {LAPTOP_ADDRESS: v2.signed()}
    again = gather(ca, LAPTOP_ADDRESS, _answering(lists), cache, "your password")
    assert again.version == 3
    with pytest.raises(UntrustedNode):
        member_check(lambda: again, "10.0.0.9:9266", "your password")(revoked_cert)

    # What it cannot do: a client that never saw v3 and reaches only the laptop has
    # nothing newer than v2 to go by (docs/architecture.md, Known limits).
    fresh = gather(ca, LAPTOP_ADDRESS, _answering(lists), None, "your password")
    assert fresh.version == 2


def test_a_current_member_is_accepted(
    ca: SiteCA, versions: list[Directory], controller: NodeRecord
) -> None:
    v3 = _members(versions)[2]
    lists: dict[tuple[str, int], SignedDirectory | Exception] = {CONTROLLER_ADDRESS: v3.signed()}
    found = gather(ca, CONTROLLER_ADDRESS, _answering(lists), None, "your password")
    check = member_check(lambda: found, "127.0.0.1:7003", "your password")
    check(_cert(controller.id, controller.cert_serial))  # no error
    # The same node id with another certificate (a serial the directory does not name),
    # or no certificate at all: refused.
    with pytest.raises(UntrustedNode):
        check(_cert(controller.id, "ffff"))
    with pytest.raises(UntrustedNode, match="no site member certificate"):
        check({})


def test_no_list_at_all_is_said_plainly(ca: SiteCA, other_ca: SiteCA, tmp_path: Path) -> None:
    # Not reachable: the same error as any call to it.
    with pytest.raises(Unavailable, match="cannot reach"):
        gather(ca, LAPTOP_ADDRESS, _answering({}), None, "your password")
    # It answers, but with no list this client can trust: refused, nothing sent.
    foreign = Directory.create(
        other_ca,
        "s",
        "x",
        NodeRecord("n", "n", "super", "1", "m"),
    ).membership()
    assert foreign is not None
    lists: dict[tuple[str, int], SignedDirectory | Exception] = {LAPTOP_ADDRESS: foreign.signed()}
    with pytest.raises(UntrustedNode, match="not sending your submit token"):
        gather(ca, LAPTOP_ADDRESS, _answering(lists), None, "your submit token")
    older = from_wire(404, {"error": "no such endpoint: /v1/members"}, "laptop")
    assert isinstance(older, NotFound)
    with pytest.raises(UntrustedNode, match="cannot check"):
        gather(ca, LAPTOP_ADDRESS, _answering({LAPTOP_ADDRESS: older}), None, "your password")


def test_the_secure_print_backend_accepts_its_own_node_only(ca: SiteCA, tmp_path: Path) -> None:
    mine = ca.issue(new_key().public_key(), "n-here", ["127.0.0.1"])
    path = tmp_path / "node.pem"
    path.write_bytes(cert_pem(mine))
    check = own_node_check(path, "127.0.0.1:9265", "the job or the intake secret")
    node_id, serial = "n-here", format(mine.serial_number, "x")
    check(mine.public_bytes(serialization.Encoding.DER))
    assert cert_identity(_cert(node_id, serial))[:2] == (node_id, serial)
    # Its name and serial on another key (a certificate minted with the CA key): refused.
    with pytest.raises(UntrustedNode, match="not this machine's meshprint node"):
        check(_cert(node_id, serial))
    other = ca.issue(new_key().public_key(), "n-elsewhere", ["127.0.0.1"])
    with pytest.raises(UntrustedNode, match="not this machine's meshprint node"):
        check(_cert("n-elsewhere", format(other.serial_number, "x")))
    with pytest.raises(UntrustedNode):
        check(_cert(node_id, "1234"))
