"""A stolen appliance: its data directory copied (its node key, its shares), the CA key
too (as an older version kept it in the clear), and network reach to the other nodes.
The attacker plays with the project's own modules and must not get any job held before
the theft without its owner's password or the recovery key: not by signing a release
command (the release authority signs those), not by a directory of its own that swaps a
member's key, and not by adding a member of its own and having a holder's copy rebuilt
there."""

from __future__ import annotations

import base64
import datetime as dt
import secrets
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from appliance.clients.peer import PeerClient
from appliance.datadir import DataDir
from appliance.errors import Forbidden, RemoteError
from appliance.https.client import Client
from appliance.jobs.release import make_command
from appliance.site import recovery
from appliance.site.ca import (
    SiteCA,
    cert_pem,
    key_fingerprint,
    key_pem,
    new_key,
    serial_hex,
)
from appliance.site.directory import next_point
from appliance.site.state import open_site
from appliance.site.tls import peer_client_context
from tests.integration.conftest import Site, make_site, random_bytes, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> Site:
    yield from make_site(tmp_path, 4)


def _mint(
    ca: SiteCA, node_id: str, serial: str, key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    """A certificate with this name and serial for another key, signed with the CA key."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, node_id)])
    assert ca.key is not None
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(int(serial, 16))
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(node_id)]), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca.key, hashes.SHA256())
    )


def _as(site: Site, cert: Path, key: Path, target: int) -> PeerClient:
    """Node `target`'s peer API, called with this certificate and key."""
    context = peer_client_context(cert, key, site.mesh.ca)
    node = site.mesh.nodes[target]
    return PeerClient(Client("127.0.0.1", node.peer_port, context, server_name=node.id))


def test_the_stolen_ca_key_gets_no_held_job(site: Site, tmp_path: Path) -> None:
    mesh = site.mesh
    data = random_bytes(200_000)
    job_id = site.submit(0, data)["id"]
    wait_for(lambda: len(site.held_on(job_id)) == 3)
    holders = sorted(site.held_on(job_id))
    assert 0 in holders  # the appliance took it in, so the thief has one share already
    h2, h3 = (i for i in holders if i != 0)

    stolen = mesh.nodes[0].data / "tls"
    # The CA key is on no disk in the clear (test_sealed_authority.py): this thief has it
    # anyway (an appliance of an older version, or taken from memory while an
    # administrator had it unlocked), and still gets no held job.
    thief = open_site(DataDir(mesh.nodes[0].data))[1]
    ca = recovery.open_authority(
        thief.directory().doc["recovery"], thief.ca, thief.site_id, mesh.recovery_key
    )
    as_appliance = lambda target: _as(site, stolen / "node.pem", stolen / "node.key", target)  # noqa: E731
    client = mesh.client(h2)

    # 1. A release command signed with the CA key: refused.
    forged = make_command(ca, job_id, mesh.nodes[h2].id)
    with pytest.raises(RemoteError) as refused:
        client.release_document(job_id, command=forged).read()
    assert isinstance(refused.value, Forbidden)

    # 2. A member of its own: a key and a certificate minted with the CA key, added by a
    #    directory version the CA key signs, which also drops holder h3 (so its copy
    #    must be rebuilt somewhere).
    fake_key = new_key()
    fake_id = "n" + secrets.token_hex(6)
    fake_cert = ca.issue(fake_key.public_key(), fake_id, ["127.0.0.1"])
    fake_dir = tmp_path / "fake"
    fake_dir.mkdir()
    (fake_dir / "node.pem").write_bytes(cert_pem(fake_cert) + cert_pem(ca.cert))
    (fake_dir / "node.key").write_bytes(key_pem(fake_key))
    current = open_site(DataDir(mesh.nodes[0].data))[1].directory()
    lost = mesh.nodes[h3].id

    def take_over(doc: dict) -> None:  # type: ignore[type-arg]
        gone = doc["nodes"].pop(lost)
        doc["revoked"] = sorted({*doc["revoked"], gone["cert_serial"]})
        doc["nodes"][fake_id] = {
            "id": fake_id, "name": "fake", "role": "super", "cert_serial": serial_hex(fake_cert),
            "machine_id": "fake", "host": "127.0.0.1", "peer_port": 9, "submit_port": 9,
            "release_port": 9, "point": next_point(doc),
            "key_sha256": key_fingerprint(fake_key.public_key()),
        }  # fmt: skip

    rewritten = current.edited(ca, take_over)
    assert as_appliance(h2).offer_directory(rewritten.signed())  # the CA key's word holds
    fake = open_site(DataDir(mesh.nodes[h2].data))[1].directory().node(fake_id)
    assert fake is not None and fake.point is not None

    # 3. The appliance, a holder, asks h2 to rebuild h3's copy on the fake member: h2 has
    #    known that member only since just now, after the job came. Refused.
    job = site.peer(h2, h2).job(job_id)
    request = {
        "gone": [lost],
        "new": fake_id,
        "new_x": fake.point,
        "holders_version": 1,
        "mask": base64.b64encode(bytes(32)).decode(),
    }
    with pytest.raises(RemoteError) as refused:
        as_appliance(h2).register_repair(job_id, request)
    assert isinstance(refused.value, Forbidden)
    assert "after" in str(refused.value)
    # Nor does the fake member get a part of anything.
    with pytest.raises(RemoteError) as refused:
        _as(site, fake_dir / "node.pem", fake_dir / "node.key", h2).repair_share(job_id)
    assert isinstance(refused.value, Forbidden)

    # 4. Nor can it pose as a real member with a minted certificate for its name and
    #    serial: the directory pins each member's key.
    real = current.node(mesh.nodes[holders[1]].id)
    assert real is not None and real.key_sha256
    posing_key = new_key()
    posing = _mint(ca, real.id, real.cert_serial, posing_key)
    (fake_dir / "pose.pem").write_bytes(cert_pem(posing) + cert_pem(ca.cert))
    (fake_dir / "pose.key").write_bytes(key_pem(posing_key))
    with pytest.raises(RemoteError) as refused:
        _as(site, fake_dir / "pose.pem", fake_dir / "pose.key", 0).job(job_id)
    assert isinstance(refused.value, Forbidden)

    # The job is untouched and its owner still releases it.
    assert job["id"] == job_id
    assert site.release(h2, job_id) == data
