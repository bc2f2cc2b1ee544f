"""The submit API (port 9265, HTTPS): clients hand in documents; new nodes join here."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.errors import Forbidden, Unauthorized
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.intake import door
from appliance.jobs.intake import ingest
from appliance.site import enroll
from appliance.site.ca import cert_pem, sha256_hex

if TYPE_CHECKING:
    from appliance.node import Node


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
        return json_response(enroll.admit(node.site, data), 201)

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    return router.dispatch
