"""The submit API (port 9265, HTTPS): clients hand in documents; new nodes join here.
A wrong submit token or recovery proof is rate-limited per client address (`signin`)."""

from __future__ import annotations

from collections.abc import Callable

from appliance.api import members, signin
from appliance.api.context import ApiContext
from appliance.clients.node import IDEMPOTENCY_HEADER, INTAKE_SECRET_HEADER
from appliance.endpoint import DEFAULT_RELEASE_PORT
from appliance.errors import Forbidden, MethodNotAllowed
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.intake import door
from appliance.jobs import intake
from appliance.site import enroll
from appliance.site.ca import cert_pem
from appliance.site.recovery import check_proof


def app(node: ApiContext) -> Callable[[Request], Response]:
    router = Router()
    limiter = signin.new_limiter()

    @router.route("POST", "/v1/jobs")
    def submit(request: Request) -> Response:
        user, token = basic_credentials(request)
        with signin.token_attempt(limiter, request):
            intake.check_submit_token(node.directory(), user, token)
        receipt = intake.ingest(
            node,
            user,
            request.query.get("title", "Untitled"),
            request.headers.get("Content-Type", ""),
            request.body,
            idempotency_key=intake.check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER)),
        )
        return json_response(receipt.to_dict(), 201)

    @router.route("GET", "/v1/jobs")
    def list_elsewhere(request: Request) -> Response:
        raise MethodNotAllowed(
            "this is the submit API: jobs are listed and released on the node's release "
            f"API (port {DEFAULT_RELEASE_PORT} unless set otherwise)"
        )

    @router.route("POST", "/v1/intake")
    def intake_for_queue(request: Request) -> Response:
        """The local Secure Print backend hands a job in for a user."""
        given = request.headers.get(INTAKE_SECRET_HEADER, "")
        door.check_caller(node.intake_secret, request.client[0], given)
        content_type = request.headers.get("Content-Type", "")
        key = intake.check_idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        receipt = intake.ingest_on_behalf(node, request.query, content_type, request.body, key)
        return json_response(receipt.to_dict(), 201)

    @router.route("GET", "/v1/ca")
    def ca(request: Request) -> Response:
        return Response(200, cert_pem(node.site.ca.cert), "application/x-pem-file")

    @router.route("POST", "/v1/recovery")
    def recovery_copy(request: Request) -> Response:
        """The CA and the signed directory, for a node that shows the recovery key's
        proof to take over from a lost controller (`appliance.site.restore`)."""
        directory = node.directory()
        shown = str(request.json(limit=4096).get("proof"))
        with signin.token_attempt(limiter, request):
            check_proof(directory.doc.get("recovery"), shown)
        return json_response(
            {"ca": cert_pem(node.site.ca.cert).decode(), "directory": directory.signed()}
        )

    @router.route("POST", "/v1/join")
    def join(request: Request) -> Response:
        if not node.is_controller:
            raise Forbidden("join at the site controller (the address in the join token)")
        data = request.json(limit=64 * 1024)
        return json_response(enroll.admit(node.site, data), 201)

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    members.add_route(router, node.directory)
    return router.dispatch
