"""The peer API (port 9264): node-to-node calls, mutual TLS, members only. Each route
parses the request, calls one function of the mesh, jobs or site, and answers; the
client side is `appliance.clients.peer.PeerClient`."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from appliance.api.context import ApiContext
from appliance.api.plaintext import stream_plaintext
from appliance.clients.peer import META_HEADER, SHARE_HEADER, SIZE_HEADER
from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Forbidden, NotFound
from appliance.https.server import Request, Response, Router, json_response
from appliance.jobs import deliver, release, releases, usage
from appliance.mesh import holders, repair, replicate, sync
from appliance.site.quotas import check_month
from appliance.store.jobs import check_job_id, clean_pages


def app(node: ApiContext) -> Callable[[Request], Response]:
    router = Router()

    def dispatch(request: Request) -> Response:
        if (request.method, request.path) == ("POST", "/peer/directory"):
            return introduce(request)
        request.context["peer"] = node.peers.check_member(request.peer_cert)
        return router.dispatch(request)

    def introduce(request: Request) -> Response:
        """A directory offered by a member, or by a node that the offered directory (signed
        by the site authority) makes one: how a restored controller introduces itself to
        members that do not know it yet (`appliance.site.restore`)."""
        data = request.json()
        raw, signature = unb64(str(data.get("raw"))), unb64(str(data.get("signature")))
        adopted = node.site.adopt(raw, signature, data.get("addresses"))
        node.peers.check_member(request.peer_cert)
        return json_response({"adopted": adopted})

    @router.route("POST", "/peer/sync")
    def do_sync(request: Request) -> Response:
        return json_response(sync.answer(node, request.json()))

    @router.route("GET", "/peer/directory")
    def get_directory(request: Request) -> Response:
        return json_response(node.directory().signed())

    @router.route("PUT", "/peer/jobs/<job_id>")
    def receive(request: Request) -> Response:
        """A replica from a holder on its list, never over a copy we hold (a repair's
        completes its share from the helping holder: `repair.finish_replica`)."""
        job_id, caller = request.params["job_id"], request.context["peer"]
        meta = request.headers.get(META_HEADER, "")
        finish = functools.partial(repair.finish_replica, node)
        replicate.store_replica(node, job_id, caller, meta, request.body, finish)
        return json_response({"stored": job_id}, 201)

    @router.route("GET", "/peer/jobs")
    def list_jobs(request: Request) -> Response:
        owner = request.query.get("owner")
        return json_response({"jobs": [j.listed() for j in node.store.all(owner)]})

    @router.route("GET", "/peer/jobs/<job_id>")
    def get_job(request: Request) -> Response:
        return json_response(node.store.require(request.params["job_id"]).holder_info())

    @router.route("POST", "/peer/jobs/<job_id>/open")
    def open_for_user(request: Request) -> Response:
        """Decrypt for the member that opened the owner's share (user-present release)."""
        job_id, caller = request.params["job_id"], request.context["peer"]
        return stream_plaintext(release.open_for_member(node, job_id, caller, request.json()))

    @router.route("POST", "/peer/jobs/<job_id>/share")
    def share(request: Request) -> Response:
        """Our share, for the node a controller-signed release command names."""
        job_id, caller = request.params["job_id"], request.context["peer"]
        return json_response(release.share_for_holder(node, job_id, caller, request.json()))

    @router.route("POST", "/peer/jobs/<job_id>/release")
    def release_authorized(request: Request) -> Response:
        """Our sealed copy and share, for the node a release command names that holds no
        copy (it decrypts with a second holder's share)."""
        job_id, caller = check_job_id(request.params["job_id"]), request.context["peer"]
        copy = release.sealed_for_deliverer(node, job_id, caller, request.json())
        return Response(
            200,
            copy.chunks,
            "application/octet-stream",
            length=copy.sealed_size,
            headers={SHARE_HEADER: copy.header, SIZE_HEADER: str(copy.size)},
        )

    @router.route("POST", "/peer/jobs/<job_id>/deliver")
    def deliver_here(request: Request) -> Response:
        """A release to a printer whose CUPS queue is on this node."""
        job_id = request.params["job_id"]
        return json_response(releases.deliver_handed_over(node, job_id, request.json()))

    @router.route("POST", "/peer/jobs/<job_id>/repair")
    def register_repair(request: Request) -> Response:
        """A holder coordinating a repair asks us to help (we check we agree)."""
        job = node.store.require(request.params["job_id"])
        repair.register(node, job, request.context["peer"], request.json())
        return json_response({"ok": True})

    @router.route("POST", "/peer/jobs/<job_id>/repair-share")
    def repair_share(request: Request) -> Response:
        """Our masked part of a repaired holder's share, for that new holder only."""
        job = node.store.require(request.params["job_id"])
        return json_response(repair.part_for(node, job, request.context["peer"]))

    @router.route("POST", "/peer/jobs/<job_id>/holders")
    def set_holders(request: Request) -> Response:
        """A new holder list from a holder (we adopt it only when we agree)."""
        data = request.json()
        job_id, caller = request.params["job_id"], request.context["peer"]
        holders.adopt_holders(node, job_id, caller, data.get("holders"), data.get("version"))
        return json_response({"ok": True})

    @router.route("POST", "/peer/jobs/<job_id>/delete")
    def delete(request: Request) -> Response:
        """Delete our copy, at the word of a member that may (`holders.delete_from`)."""
        job_id = check_job_id(request.params["job_id"])
        data = request.json()
        reason = str(data.get("reason", "deleted"))[:40]
        held = holders.delete_from(node, job_id, request.context["peer"], reason, data.get("proof"))
        return json_response({"held": held})

    @router.route("POST", "/peer/jobs/<job_id>/delete-challenge")
    def delete_challenge(request: Request) -> Response:
        """A value sealed to the job's owner, for an owner's delete through a non-holder."""
        job_id = check_job_id(request.params["job_id"])
        sealed = holders.delete_challenge(node, job_id, request.context["peer"])
        return json_response({"challenge": b64(sealed)})

    @router.route("POST", "/peer/jobs/<job_id>/pages")
    def set_pages(request: Request) -> Response:
        """The document's pages, from a holder of the job (the node that took it in)."""
        job = node.store.require(check_job_id(request.params["job_id"]))
        if request.context["peer"] not in {h.node for h in job.holders}:
            raise Forbidden(f"only a holder of job {job.id} tells its page count")
        pages = clean_pages(request.json().get("pages"))
        if pages is None:
            raise BadRequest("pages must be a whole number from 1")
        return json_response({"set": node.store.set_pages(job.id, pages)})

    @router.route("POST", "/peer/jobs/<job_id>/<step>")
    def delivery_step(request: Request) -> Response:
        """claim / unclaim / unknown: a delivering node keeps the holders informed."""
        deliver.peer_step(node, request.context["peer"], request.params, request.json())
        return json_response({"ok": True})

    @router.route("GET", "/peer/jobs/<job_id>/deliveries")
    def job_deliveries(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        return json_response([d.to_dict() for d in node.deliveries.for_job(job_id)])

    @router.route("GET", "/peer/releases/<release_id>")
    def release_status(request: Request) -> Response:
        found = node.deliveries.get(request.params["release_id"])
        if found is None:
            raise NotFound(f"no release {request.params['release_id']} here")
        return json_response(found.to_dict())

    @router.route("POST", "/peer/usage")
    def take_usage(request: Request) -> Response:
        """The calling member's printed jobs' usage records (controller only)."""
        return json_response(usage.accept(node, request.context["peer"], request.json()))

    @router.route("GET", "/peer/usage")
    def usage_of(request: Request) -> Response:
        """A user's pages in a month, for a node checking a quota at release."""
        if not node.is_controller:
            raise Forbidden("ask the site controller for usage figures")
        month = check_month(request.query.get("month", ""))
        return json_response(usage.month_figures(node, request.query.get("user", ""), month))

    @router.route("GET", "/peer/health")
    def health(request: Request) -> Response:
        return json_response({"node": node.id, "time": time.time()})

    return dispatch
