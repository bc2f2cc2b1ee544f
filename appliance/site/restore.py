"""Restoring the controller role on a new node from surviving members and the recovery
key (`appliance.site.recovery`): the appliance is replaceable.

The new node shows a member the key's proof and receives the site CA certificate and the
signed directory, from that member and every other member it can then reach (the newest
verified version wins, so one stale or hostile member cannot roll the site back). It
opens the sealed authority with the key and signs the next directory version: the lost
controller removed and its certificate revoked, this node the controller. Members adopt
that version when the new node first calls them (`api/peer.py`, `POST /peer/directory`).
Users, printers, members and settings come back with the directory; held jobs stay
releasable by their owners, and the lost controller's copies are rebuilt by repair from
the other holders (it is no longer a member).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from cryptography import x509

from appliance.clients.node import NodeClient
from appliance.crypto.userkeys import unb64
from appliance.datadir import DataDir, Identity
from appliance.endpoint import DEFAULT_SUBMIT_PORT
from appliance.errors import BadRequest, ConfigError, MeshprintError
from appliance.https.client import Client
from appliance.site import recovery, release_authority
from appliance.site.ca import SiteCA
from appliance.site.directory import Directory, give_point
from appliance.site.enroll import make_controller, split_host_port
from appliance.site.state import SiteState
from appliance.site.tls import unverified_context
from appliance.store.db import Database

log = logging.getLogger(__name__)


def restore_site(
    data: DataDir, member: str, recovery_key: str, host: str | None = None
) -> Identity:
    """Make `data` the site's new controller; nothing is written unless the key opens
    the site's recovery copy."""
    recovery.normalise(recovery_key)
    if data.exists():
        raise ConfigError(f"{data.root} already holds a meshprint node: restore into a new one")
    ca, directory = _newest_copy(member, recovery.proof(recovery_key))
    authority = recovery.open_authority(
        directory.doc.get("recovery"), ca, directory.site_id, recovery_key
    )
    data.prepare_new()
    record = make_controller(data, authority, host)
    lost = directory.controller_id

    releaser = release_authority.unlock(directory.doc, directory.site_id, recovery_key)

    def take_over(doc: dict[str, Any]) -> None:
        doc["nodes"][record.id] = entry = asdict(record)
        give_point(doc, entry)  # a new one: the lost one's stays used
        # The administrator's own (the recovery key is in hand): it may take the copies
        # of jobs held before it, those the lost controller had.
        entry["vouched"] = release_authority.vouch(releaser, entry)
        old = doc["nodes"].pop(lost, None)
        if old is not None:
            doc["revoked"] = sorted({*doc["revoked"], old["cert_serial"]})
        doc["controller"] = record.id

    restored = directory.edited(authority, take_over).with_addresses(directory.announced)
    SiteState(Database(data.db), authority, directory.site_id).initialise(restored)
    identity = Identity(record.id, directory.site_id, "super")
    data.write_identity(identity)
    log.info("restored site %s from version %d", directory.site_id, directory.version)
    return identity


def _fetch(host: str, port: int, proof: str) -> tuple[SiteCA, Directory]:
    """The CA and directory a member gives for the proof, verified against each other
    (the recovery copy then proves both are the site's)."""
    client = NodeClient(Client(host, port, unverified_context(), timeout=10))
    answer = client.recovery(proof)
    try:
        ca = SiteCA(x509.load_pem_x509_certificate(str(answer["ca"]).encode()), None)
        signed = answer["directory"]
        raw, signature = unb64(str(signed["raw"])), unb64(str(signed["signature"]))
    except (KeyError, ValueError, TypeError):
        raise BadRequest(f"the node at {host}:{port} gave a malformed recovery answer") from None
    directory = Directory.verify(raw, signature, ca, None)
    return ca, directory.with_addresses(directory.verified_addresses(signed.get("addresses"), ca))


def _newest_copy(member: str, proof: str) -> tuple[SiteCA, Directory]:
    host, port = split_host_port(member, DEFAULT_SUBMIT_PORT)
    ca, newest = _fetch(host, port, proof)
    for record in newest.nodes.values():
        if not (record.host and record.submit_port) or (record.host, record.submit_port) == (
            host,
            port,
        ):
            continue
        try:
            other_ca, other = _fetch(record.host, record.submit_port, proof)
        except MeshprintError as err:
            log.info("member %s not asked: %s", record.id, err)
            continue
        if other_ca.fingerprint == ca.fingerprint and other.version > newest.version:
            newest = other
    return ca, newest
