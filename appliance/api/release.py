"""The local release API (port 9266, HTTPS): owners list, release and delete their jobs;
anyone may read the mesh's health. Works with only this node and one holder up. Every
route that checks a password is rate-limited per account and per address (`signin`).
"""

from __future__ import annotations

from collections.abc import Callable

from appliance.api import members, signin
from appliance.api.context import ApiContext
from appliance.api.plaintext import stream_plaintext
from appliance.endpoint import DEFAULT_SUBMIT_PORT
from appliance.errors import MethodNotAllowed, NotFound
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.jobs import deliver, releases
from appliance.jobs.release import Plaintext
from appliance.jobs.status import mesh_status
from appliance.store.jobs import check_job_id


def app(
    node: ApiContext, web: Callable[[Request], Response] | None = None
) -> Callable[[Request], Response]:
    """The release API; paths outside /v1/ go to `web` (the release page) when given."""
    router = Router()
    limiter = signin.new_limiter()

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    members.add_route(router, node.directory)

    @router.route("GET", "/v1/status")
    def status(request: Request) -> Response:
        return json_response(mesh_status(node, node.db, node.data.root))

    @router.route("POST", "/v1/jobs")
    def submit_elsewhere(request: Request) -> Response:
        raise MethodNotAllowed(
            "this is the release API: hand documents in on the node's submit API "
            f"(port {DEFAULT_SUBMIT_PORT} unless set otherwise)"
        )

    @router.route("GET", "/v1/jobs")
    def jobs(request: Request) -> Response:
        credentials = basic_credentials(request)
        with signin.password_attempt(limiter, request, credentials[0]):
            return json_response({"jobs": releases.jobs_of(node, credentials)})

    @router.route("GET", "/v1/jobs/<job_id>")
    def job_show(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        credentials = basic_credentials(request)
        with signin.password_attempt(limiter, request, credentials[0]):
            return json_response(releases.job_of(node, job_id, credentials))

    @router.route("POST", "/v1/jobs/<job_id>/release")
    def release_job(request: Request) -> Response:
        """To a printer when the body names one (202 + the delivery), else the document."""
        credentials = basic_credentials(request) if request.headers.get("Authorization") else None
        job_id = request.params["job_id"]
        data = request.json()
        if credentials is None:  # a controller-signed command: no password to guess
            outcome = releases.release_job(node, job_id, data, None)
        else:
            with signin.password_attempt(limiter, request, credentials[0]):
                outcome = releases.release_job(node, job_id, data, credentials)
        if isinstance(outcome, Plaintext):
            return stream_plaintext(outcome, finish=True)
        return json_response(outcome, 202)

    @router.route("GET", "/v1/releases/<release_id>")
    def release_status(request: Request) -> Response:
        """Where a release to a printer is: queued, printing, printed, failed or unknown."""
        release_id = deliver.check_release_id(request.params["release_id"])
        found = releases.find_delivery(node, release_id)
        if found is None:
            raise NotFound(f"no release {release_id}")
        return json_response(found)

    @router.route("DELETE", "/v1/jobs/<job_id>")
    def delete(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        credentials = basic_credentials(request)
        with signin.password_attempt(limiter, request, credentials[0]):
            releases.delete_job(node, job_id, credentials)
        return json_response({"deleted": job_id})

    if web is None:
        return router.dispatch

    def dispatch(request: Request) -> Response:
        return router.dispatch(request) if request.path.startswith("/v1/") else web(request)

    return dispatch
