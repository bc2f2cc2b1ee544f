"""The peer API (port 9264): node-to-node calls, mutual TLS, members only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.clients.peer import META_HEADER
from appliance.crypto import shamir
from appliance.crypto.stream import HEADER_SIZE, parse_header, plaintext_size
from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Forbidden, IntegrityError, NotFound
from appliance.https.server import Request, Response, Router, json_response
from appliance.jobs import deliver, release
from appliance.mesh import repair, sync
from appliance.mesh.replicate import decode_meta
from appliance.store.jobs import Job, check_job_id, holders_from_list, holders_to_list

if TYPE_CHECKING:
    from appliance.node import Node


def app(node: Node) -> Callable[[Request], Response]:
    router = Router()

    def dispatch(request: Request) -> Response:
        request.context["peer"] = node.peers.check_member(request.peer_cert)
        return router.dispatch(request)

    @router.route("POST", "/peer/sync")
    def do_sync(request: Request) -> Response:
        return json_response(sync.answer(node, request.json()))

    @router.route("GET", "/peer/directory")
    def get_directory(request: Request) -> Response:
        return json_response(sync.directory_payload(node))

    @router.route("POST", "/peer/directory")
    def put_directory(request: Request) -> Response:
        data = request.json()
        adopted = node.site.adopt(unb64(str(data["raw"])), unb64(str(data["signature"])))
        return json_response({"adopted": adopted})

    @router.route("POST", "/peer/announce")
    def announce(request: Request) -> Response:
        if not node.is_controller:
            raise Forbidden("announce to the site controller")
        data = request.json()
        fields = {k: data[k] for k in ("host", "peer_port", "submit_port", "release_port")}
        if not isinstance(fields["host"], str) or not all(
            isinstance(fields[k], int) and 0 < fields[k] < 65536
            for k in ("peer_port", "submit_port", "release_port")
        ):
            raise BadRequest("announce needs a host and three ports")
        directory = node.update_node(request.context["peer"], fields)
        return json_response({"directory_version": directory.version})

    @router.route("PUT", "/peer/jobs/<job_id>")
    def receive(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        try:
            job = Job.from_replica_meta(decode_meta(request.headers.get(META_HEADER, "")), 0, 0)
            if job.id != job_id:
                raise ValueError("job id differs")
        except (ValueError, KeyError, TypeError):
            raise BadRequest("replica metadata is missing or malformed") from None
        if request.body.length is not None:
            node.store.check_space(request.body.length, node.directory().settings.disk_reserve)
        incoming = node.store.receive(job_id)
        try:
            header = b""
            while piece := request.body.read():
                if len(header) < HEADER_SIZE:
                    header += piece[: HEADER_SIZE - len(header)]
                incoming.write(piece)
            chunk_size = parse_header(header)
            job.size = plaintext_size(incoming.written, chunk_size)
            job.sealed_size = incoming.written
            if job.size < 0:
                raise IntegrityError("replica is not a whole sealed job")
        except BaseException:
            incoming.abort()
            raise
        incoming.commit(job)
        return json_response({"stored": job_id}, 201)

    @router.route("GET", "/peer/jobs")
    def list_jobs(request: Request) -> Response:
        owner = request.query.get("owner")
        return json_response(
            {
                "jobs": [
                    {**j.public(), "holders_version": j.holders_version}
                    for j in node.store.all(owner)
                ]
            }
        )

    @router.route("GET", "/peer/jobs/<job_id>")
    def get_job(request: Request) -> Response:
        job = node.store.require(request.params["job_id"])
        return json_response(
            {
                **job.public(),
                "user_share": b64(job.user_share),
                "holders_x": holders_to_list(job.holders),
            }
        )

    @router.route("POST", "/peer/jobs/<job_id>/open")
    def open_for_user(request: Request) -> Response:
        """Decrypt for the member that opened the owner's share (user-present release)."""
        job = node.store.require(request.params["job_id"])
        data = request.json()
        try:
            user_x, user_share = int(data["x"]), unb64(str(data["share"]))
        except (KeyError, ValueError, TypeError):
            raise BadRequest("open needs the user's share") from None
        key = shamir.combine({job.share_x: job.share, user_x: user_share})
        return stream_plaintext(release._local_plaintext(node, job.id, key, job.holders))

    @router.route("POST", "/peer/jobs/<job_id>/share")
    def share(request: Request) -> Response:
        """Our share, for a holder that carries a controller-signed release command."""
        job = node.store.require(request.params["job_id"])
        if request.context["peer"] not in {h.node for h in job.holders}:
            raise Forbidden("only another holder of this job may ask for its share")
        release.verify_command(node, request.json(), job.id)
        return json_response({"x": job.share_x, "share": b64(job.share)})

    @router.route("POST", "/peer/jobs/<job_id>/release")
    def release_authorized(request: Request) -> Response:
        """An authorized release forwarded by a member that holds no copy."""
        job_id = check_job_id(request.params["job_id"])
        plaintext = release.release_authorized(node, request.json(), job_id)
        return stream_plaintext(plaintext)

    @router.route("POST", "/peer/jobs/<job_id>/deliver")
    def deliver_here(request: Request) -> Response:
        """A release to a printer whose CUPS queue is on this node, handed over by the node
        the owner (or the controller's command) released it on."""
        job_id = check_job_id(request.params["job_id"])
        data = request.json()
        opener = data.get("opener")
        if not isinstance(opener, dict):
            raise BadRequest("a handed-over release needs what opens the job")
        printer = str(data.get("printer", ""))
        if deliver.queue_node(node, printer) is not None:
            raise BadRequest(f"printer {printer} is not attached to this node")
        meta = release.find_job(node, job_id, owner=None)
        options = deliver.print_options(data, meta)
        if "command" in opener:
            signed = opener["command"]

            def open_plaintext() -> release.Plaintext:
                return release.release_authorized(node, signed, job_id)
        else:
            try:
                share_x, share = int(opener["x"]), unb64(str(opener["share"]))
            except (KeyError, ValueError, TypeError):
                raise BadRequest("a handed-over release needs the owner's share") from None

            def open_plaintext() -> release.Plaintext:
                return release.release_with_share(node, job_id, share_x, share, meta)

        delivery = deliver.deliver(
            node,
            job_id,
            meta["holders"],
            printer,
            options,
            deliver.check_release_id(str(data.get("release_id", ""))),
            bool(data.get("reprint")),
            open_plaintext,
        )
        return json_response(delivery.to_dict())

    @router.route("POST", "/peer/jobs/<job_id>/repair-share")
    def repair_share(request: Request) -> Response:
        job = node.store.require(request.params["job_id"])
        return json_response(
            repair.share_for_repair(node, job, request.context["peer"], request.json())
        )

    @router.route("POST", "/peer/jobs/<job_id>/holders")
    def holders(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        data = request.json()
        new = holders_from_list(data["holders"])
        if node.id not in {h.node for h in new}:
            node.store.drop(job_id)
        else:
            node.store.set_holders(job_id, new, int(data["version"]))
        return json_response({"ok": True})

    @router.route("POST", "/peer/jobs/<job_id>/delete")
    def delete(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        reason = str(request.json().get("reason", "deleted"))[:40]
        return json_response({"held": node.store.delete(job_id, reason)})

    def delivery_step(step: str) -> Callable[[Request], Response]:
        """claim / unclaim / unknown: a delivering node keeps the holders informed."""

        def handle(request: Request) -> Response:
            data = request.json()
            if data.get("job") != request.params["job_id"]:
                raise BadRequest("the delivery step names another job")
            deliver.peer_action(node, step, data)
            return json_response({"ok": True})

        return handle

    for step in ("claim", "unclaim", "unknown"):
        router.route("POST", f"/peer/jobs/<job_id>/{step}")(delivery_step(step))

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

    @router.route("GET", "/peer/health")
    def health(request: Request) -> Response:
        return json_response({"node": node.id, "time": time.time()})

    return dispatch


def stream_plaintext(plaintext: release.Plaintext, finish: bool = False) -> Response:
    """A decrypted document as a streamed response. The releasing side deletes the job
    (`finish`), not a holder that only decrypted for it."""

    return Response(
        200,
        plaintext.chunks,
        "application/octet-stream",
        length=plaintext.size,
        on_complete=plaintext.finish if finish else None,
    )
