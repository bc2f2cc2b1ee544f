"""Making a node: creating a new site (this node becomes its controller) or joining one."""

from __future__ import annotations

import re
import secrets
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.clients.node import NodeClient
from appliance.crypto.userkeys import unb64
from appliance.datadir import DataDir, Identity
from appliance.errors import BadRequest, Conflict, Forbidden, Gone, Unauthorized
from appliance.https.client import Client
from appliance.site import authority, grants, release_authority
from appliance.site.ca import (
    SiteCA,
    cert_pem,
    csr_for,
    fingerprint,
    key_fingerprint,
    key_pem,
    new_key,
    serial_hex,
    write_private,
)
from appliance.site.directory import ROLES, Directory, NodeRecord, give_point
from appliance.site.recovery import new_recovery_key
from appliance.site.state import SiteState
from appliance.site.tls import client_context, unverified_context
from appliance.site.tokens import JoinToken
from appliance.store.db import Database

NODE_ID_RE = re.compile(r"n[0-9a-f]{12}")


def new_node_id() -> str:
    return "n" + secrets.token_hex(6)


def machine_id() -> str:
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            return Path(path).read_text().strip()[:32]
        except OSError:
            continue
    return socket.gethostname()


def _hosts(host: str | None) -> list[str]:
    return sorted({"127.0.0.1", *([host] if host else [])})


@dataclass(frozen=True)
class NewSite:
    identity: Identity
    recovery_key: str  # shown to the administrator once; never stored (`site.recovery`)
    # the CA with its key, in memory only: for the caller to seal under an administrator's
    # key (`authority.give_authority`); on disk it is sealed under the recovery key alone
    authority: SiteCA


def create_site(data: DataDir, name: str, host: str | None = None) -> NewSite:
    name = name.strip()
    if not name or len(name) > 64:
        raise BadRequest("the site needs a name of 1-64 characters")
    data.prepare_new()
    ca = SiteCA.create(name)
    site_id = "s" + secrets.token_hex(8)
    record = make_controller(data, ca, host)
    recovery_key = new_recovery_key()
    sealed = release_authority.sealed_entries(
        ca, release_authority.ReleaseAuthority.create(), site_id, recovery_key
    )
    SiteState(Database(data.db), ca, site_id).initialise(
        Directory.create(ca, site_id, name, record, sealed)
    )
    identity = Identity(record.id, site_id, "super")
    data.write_identity(identity)
    return NewSite(identity, recovery_key, ca)


def make_controller(data: DataDir, ca: SiteCA, host: str | None) -> NodeRecord:
    """A new node id, key and certificate for the site's controller, written with the CA
    certificate into the prepared `data` (the CA key is never written in the clear:
    `appliance.site.authority`); its directory record."""
    assert ca.key is not None
    node_id, key = new_node_id(), new_key()
    cert = ca.issue(key.public_key(), node_id, _hosts(host))
    authority.keep_sealed(data)  # the CA key only sealed: under the recovery key, in the directory
    data.ca_cert.write_bytes(cert_pem(ca.cert))
    write_private(data.node_key, key_pem(key))
    data.node_cert.write_bytes(cert_pem(cert) + cert_pem(ca.cert))
    return NodeRecord(
        id=node_id,
        name=socket.gethostname(),
        role="super",
        cert_serial=serial_hex(cert),
        machine_id=machine_id(),
        key_sha256=key_fingerprint(key.public_key()),
    )


def fetch_ca(token: JoinToken) -> x509.Certificate:
    """The site CA from the controller, checked against the fingerprint in the token."""
    host, port = split_host_port(token.controller)
    pem = NodeClient(Client(host, port, unverified_context(), timeout=10)).ca()
    ca = x509.load_pem_x509_certificate(pem)
    if fingerprint(ca) != token.ca:
        raise Forbidden(
            f"the node at {token.controller} does not have this site's CA (fingerprint "
            "mismatch): someone may be intercepting the connection; do not join"
        )
    return ca


def join_site(
    data: DataDir,
    token_text: str,
    role: str = "edge",
    name: str | None = None,
    host: str | None = None,
) -> Identity:
    token = JoinToken.decode(token_text)
    if role not in ROLES:
        raise BadRequest(f"role must be one of {', '.join(ROLES)}")
    if token.expires < time.time():
        raise Gone("this join token has expired: ask for a new one (meshprint invite)")
    if data.exists():
        raise BadRequest(f"{data.root} already holds a meshprint node")
    ca_cert = fetch_ca(token)
    node_id = new_node_id()
    key = new_key()
    ca_path = data.root / ".join-ca.pem"
    data.root.mkdir(parents=True, exist_ok=True)
    ca_path.write_bytes(cert_pem(ca_cert))
    try:
        ctrl_host, ctrl_port = split_host_port(token.controller)
        controller = NodeClient(Client(ctrl_host, ctrl_port, client_context(ca_path), timeout=30))
        answer = controller.join(
            {
                "token": token_text.strip(),
                "node_id": node_id,
                "role": role,
                "name": name or socket.gethostname(),
                "machine_id": machine_id(),
                "hosts": _hosts(host),
                "csr": csr_for(key, node_id).decode(),
            },
        )
    finally:
        ca_path.unlink(missing_ok=True)
    data.prepare_new()
    ca = SiteCA(ca_cert, None)
    state = SiteState(Database(data.db), ca, token.site)
    signed = answer["directory"]
    directory = Directory.verify(unb64(signed["raw"]), unb64(signed["signature"]), ca, token.site)
    state.initialise(
        directory.with_addresses(directory.verified_addresses(signed.get("addresses"), ca))
    )
    write_private(data.node_key, key_pem(key))
    data.ca_cert.write_bytes(cert_pem(ca_cert))
    data.node_cert.write_bytes(answer["cert"].encode() + cert_pem(ca_cert))
    identity = Identity(node_id, token.site, role)
    data.write_identity(identity)
    return identity


def split_host_port(text: str, default_port: int | None = None) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or "]" in port:
        if default_port is None:
            raise BadRequest(f"{text!r} needs a port")
        return text.strip("[]"), default_port
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise BadRequest(f"{text!r} is not host:port") from None


def admit(site: SiteState, data: dict[str, Any]) -> dict[str, Any]:
    """At the controller: check a join request, spend its token, issue a certificate and
    add the member."""
    try:
        token = JoinToken.decode(str(data["token"]))
        node_id, role = str(data["node_id"]), str(data.get("role", "edge"))
        name = str(data.get("name") or node_id)[:64]
        machine_id = str(data.get("machine_id", ""))[:64]
        hosts = [str(h) for h in data.get("hosts", [])][:8]
        csr = x509.load_pem_x509_csr(str(data["csr"]).encode())
    except (KeyError, ValueError, TypeError):
        raise BadRequest("join request is malformed") from None
    if token.site != site.site_id:
        raise Unauthorized("this join token is for another site")
    if not NODE_ID_RE.fullmatch(node_id) or role not in ROLES:
        raise BadRequest(f"node id must look like n0123456789ab and role be one of {ROLES}")
    public_key = csr.public_key()
    if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise BadRequest("the certificate request is not a valid EC request")
    if site.directory().node(node_id) is not None:
        raise Conflict(f"node {node_id} is already a member")
    grant = site.redeem_token(token.secret, node_id)
    # the CA key from the grant `invite` sealed under this token (the secret opens it);
    # a token made before grants: the CA this controller holds
    ca = grants.open_grant(grant, token.secret, site.ca, site.site_id) if grant else site.ca
    if ca.key is None:
        raise Forbidden("only the site controller admits new members")
    cert = ca.issue(public_key, node_id, hosts)

    def add(doc: dict[str, Any]) -> None:
        doc["nodes"][node_id] = {
            "id": node_id,
            "name": name,
            "role": role,
            "cert_serial": serial_hex(cert),
            "machine_id": machine_id,
            "key_sha256": key_fingerprint(public_key),
        }
        give_point(doc, doc["nodes"][node_id])

    directory = site.edit(add, ca)
    return {
        "site_id": site.site_id,
        "cert": cert_pem(cert).decode(),
        "ca": cert_pem(site.ca.cert).decode(),
        "directory": directory.signed(),
        "directory_version": directory.version,
    }
