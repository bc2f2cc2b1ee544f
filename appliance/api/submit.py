"""The submit API (port 9265, HTTPS): clients hand in documents; new nodes join here."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.errors import BadRequest, Conflict, Forbidden, Unauthorized
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.intake import door
from appliance.jobs.intake import ingest
from appliance.mesh.sync import directory_payload
from appliance.site.ca import cert_pem, serial_hex, sha256_hex
from appliance.site.directory import ROLES
from appliance.site.tokens import JoinToken

if TYPE_CHECKING:
    from appliance.node import Node

NODE_ID_RE = re.compile(r"n[0-9a-f]{12}")


def check_submit_token(node: Node, user: str, token: str) -> None:
    record = node.directory().user(user)
    expected = record.token_hash if record else sha256_hex(b"no such user")
    if not hmac.compare_digest(sha256_hex(token.encode()), expected) or record is None:
        raise Unauthorized("wrong user name or token")


def app(node: Node) -> Callable[[Request], Response]:
    router = Router()

    @router.route("POST", "/v1/jobs")
    def submit(request: Request) -> Response:
        user, token = basic_credentials(request)
        check_submit_token(node, user, token)
        receipt = ingest(
            node,
            user,
            request.query.get("title", "Untitled"),
            request.headers.get("Content-Type", ""),
            request.body,
        )
        return json_response(receipt.to_dict(), 201)

    @router.route("POST", "/v1/intake")
    def intake(request: Request) -> Response:
        return door.accept(node, request)

    @router.route("GET", "/v1/ca")
    def ca(request: Request) -> Response:
        return Response(200, cert_pem(node.site.ca.cert), "application/x-pem-file")

    @router.route("POST", "/v1/join")
    def join(request: Request) -> Response:
        if not node.is_controller:
            raise Forbidden("join at the site controller (the address in the join token)")
        data = request.json(limit=64 * 1024)
        return json_response(admit(node, data), 201)

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    return router.dispatch


def admit(node: Node, data: dict[str, Any]) -> dict[str, Any]:
    """Check a join request, spend its token, issue a certificate and add the member."""
    try:
        token = JoinToken.decode(str(data["token"]))
        node_id, role = str(data["node_id"]), str(data.get("role", "edge"))
        name = str(data.get("name") or node_id)[:64]
        machine_id = str(data.get("machine_id", ""))[:64]
        hosts = [str(h) for h in data.get("hosts", [])][:8]
        csr = x509.load_pem_x509_csr(str(data["csr"]).encode())
    except (KeyError, ValueError, TypeError):
        raise BadRequest("join request is malformed") from None
    if token.site != node.site.site_id:
        raise Unauthorized("this join token is for another site")
    if not NODE_ID_RE.fullmatch(node_id) or role not in ROLES:
        raise BadRequest(f"node id must look like n0123456789ab and role be one of {ROLES}")
    public_key = csr.public_key()
    if not csr.is_signature_valid or not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise BadRequest("the certificate request is not a valid EC request")
    if node.directory().node(node_id) is not None:
        raise Conflict(f"node {node_id} is already a member")
    node.site.redeem_token(token.secret, node_id)
    cert = node.site.ca.issue(public_key, node_id, hosts)

    def add(doc: dict[str, Any]) -> None:
        doc["nodes"][node_id] = {
            "id": node_id,
            "name": name,
            "role": role,
            "cert_serial": serial_hex(cert),
            "machine_id": machine_id,
        }

    directory = node.site.edit(add)
    return {
        "site_id": node.site.site_id,
        "cert": cert_pem(cert).decode(),
        "ca": cert_pem(node.site.ca.cert).decode(),
        "directory": directory_payload(node),
        "directory_version": directory.version,
    }
