"""The local release API (port 9266, HTTPS): owners list, release and delete their jobs;
anyone may read the mesh's health; the web UI on the same machine reads the node's
recent events (`GET /v1/events`, loopback only). Works with only this node and one holder up. Every
route that checks a password is rate-limited per account and per address (`signin`).

A caller either sends the password each time (HTTP Basic: one KDF run per call, the
CLI's one-off path) or signs in once (`POST /v1/sessions`, Basic) and then sends
`Authorization: Session TOKEN`: the opened key stays in this process's memory
(`jobs.sessions`) until `DELETE /v1/sessions`, 30 minutes unused, 8 hours, or the node
having a directory in which the user's password was reset (or the user removed).
"""

from __future__ import annotations

from collections.abc import Callable

from appliance.api import members, signin
from appliance.api.context import ApiContext
from appliance.api.plaintext import stream_plaintext
from appliance.endpoint import DEFAULT_SUBMIT_PORT
from appliance.errors import Forbidden, MethodNotAllowed, NotFound, Unauthorized
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.intake.door import is_loopback
from appliance.jobs import deliver, releases, sessions, usage
from appliance.jobs.release import Plaintext
from appliance.jobs.status import mesh_status
from appliance.site import printer_urls
from appliance.store import node_events
from appliance.store.jobs import check_job_id


def app(
    node: ApiContext,
    web: Callable[[Request], Response] | None = None,
    held: sessions.KeySessions | None = None,
) -> Callable[[Request], Response]:
    """The release API; paths outside /v1/ go to `web` (the release page) when given.
    Signed-in sessions live in `held` (a fresh, empty store unless given)."""
    router = Router()
    limiter = signin.new_limiter()
    held = sessions.KeySessions() if held is None else held

    def session_token(request: Request) -> str | None:
        scheme, _, value = str(request.headers.get("Authorization", "")).partition(" ")
        if scheme.lower() != "session":
            return None
        if not value:
            raise Unauthorized(sessions.ENDED)
        return value.strip()

    def owner(request: Request) -> releases.Owner:
        """The caller's user and opened key: from their session, or their password."""
        token = session_token(request)
        if token is not None:
            held.follow(node.directory())  # a password reset here ends the session now
            return held.get(token)
        name, password = basic_credentials(request)
        with signin.password_attempt(limiter, request, name):
            return releases.unlock(node, name, password)

    @router.route("POST", "/v1/sessions")
    def sign_in(request: Request) -> Response:
        """Open the user's key once; the token is the only way back to it."""
        name, password = basic_credentials(request)
        # The record before the key is opened: a reset meanwhile ends the session.
        stamp = sessions.key_stamp(node.directory().user(name))
        with signin.password_attempt(limiter, request, name):
            name, key = releases.unlock(node, name, password)
        token = held.open(name, key, stamp)
        return json_response(
            {"session": token, "user": name, "idle": held.idle, "max_age": held.max_age}, 201
        )

    @router.route("DELETE", "/v1/sessions")
    def sign_out(request: Request) -> Response:
        token = session_token(request)
        if token is None:
            raise Unauthorized("sign out needs the session's token")
        held.close(token)
        return json_response({"signed_out": True})

    @router.route("GET", "/v1/printer-url")
    def printer_url(request: Request) -> Response:
        """The caller's personal printer URL: its path (the secret opened with their key)
        and this node's printer port (0: this node has no printer)."""
        name, key = owner(request)
        secret = printer_urls.open_secret(node.directory(), name, key)
        return json_response(
            {"user": name, "path": f"{printer_urls.PATH}/{secret}", "port": node.ipp_port}
        )

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    members.add_route(router, node.directory)

    @router.route("GET", "/v1/status")
    def status(request: Request) -> Response:
        return json_response(mesh_status(node, node.db, node.data.root))

    @router.route("GET", "/v1/events")
    def events(request: Request) -> Response:
        """This node's recent events (metadata, no owner or title), for the web UI on the
        same machine: loopback callers only."""
        if not is_loopback(request.client[0]):
            raise Forbidden("the event log is for the web UI on this machine only")
        return json_response({"node": node.id, "events": node_events.recent(node.db, 50)})

    @router.route("POST", "/v1/jobs")
    def submit_elsewhere(request: Request) -> Response:
        raise MethodNotAllowed(
            "this is the release API: hand documents in on the node's submit API "
            f"(port {DEFAULT_SUBMIT_PORT} unless set otherwise)"
        )

    @router.route("GET", "/v1/jobs")
    def jobs(request: Request) -> Response:
        return json_response({"jobs": releases.jobs_of(node, owner(request))})

    @router.route("GET", "/v1/jobs/<job_id>")
    def job_show(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        return json_response(releases.job_of(node, job_id, owner(request)))

    @router.route("POST", "/v1/jobs/<job_id>/release")
    def release_job(request: Request) -> Response:
        """To a printer when the body names one (202 + the delivery), else the document."""
        # No Authorization: a controller-signed command, no password to guess.
        who = owner(request) if request.headers.get("Authorization") else None
        job_id = request.params["job_id"]
        data = request.json()
        outcome = releases.release_job(node, job_id, data, who)
        if isinstance(outcome, Plaintext):
            return stream_plaintext(outcome, finish=True)
        return json_response(outcome, 202)

    @router.route("GET", "/v1/usage")
    def my_usage(request: Request) -> Response:
        """The caller's pages this month and what their quota leaves (None: no limit)."""
        return json_response(usage.balance(node, owner(request)[0]).to_dict())

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
        releases.delete_job(node, job_id, owner(request))
        return json_response({"deleted": job_id})

    if web is None:
        return router.dispatch

    def dispatch(request: Request) -> Response:
        return router.dispatch(request) if request.path.startswith("/v1/") else web(request)

    return dispatch
