"""The local release API (port 9266, HTTPS): owners list, release and delete their jobs;
anyone may read the mesh's health. Works with only this node and one holder up.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.api.peer import stream_plaintext
from appliance.crypto.userkeys import b64
from appliance.errors import Conflict, MeshprintError, NotFound
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.jobs import USER_X, deliver, release
from appliance.mesh.placement import COPIES
from appliance.printers import monitor, registry
from appliance.store.jobs import check_job_id

if TYPE_CHECKING:
    from appliance.node import Node


def mesh_jobs(node: Node, owner: str | None) -> dict[str, dict[str, Any]]:
    """Every job this node and the live peers hold (metadata only), and who has a copy."""
    jobs: dict[str, dict[str, Any]] = {}
    sources: list[tuple[str, list[dict[str, Any]]]] = [
        (
            node.id,
            [{**j.public(), "holders_version": j.holders_version} for j in node.store.all(owner)],
        ),
    ]
    for peer in node.peers.live():
        if peer.id == node.id:
            continue
        try:
            sources.append((peer.id, node.peers.client(peer.id).jobs(owner)))  # type: ignore[arg-type]
        except MeshprintError:
            continue
    for source, items in sources:
        for item in items:
            known = jobs.get(item["id"])
            if known is None or item["holders_version"] > known["holders_version"]:
                jobs[item["id"]] = {**item, "copies": (known or {}).get("copies", [])}
            jobs[item["id"]]["copies"] = sorted({*jobs[item["id"]]["copies"], source})
    return jobs


def _disk(node: Node) -> dict[str, int]:
    """Free and total bytes of the file system holding this node's jobs."""
    usage = shutil.disk_usage(node.data.root)
    return {"free": usage.free, "total": usage.total}


def app(
    node: Node, web: Callable[[Request], Response] | None = None
) -> Callable[[Request], Response]:
    """The release API; paths outside /v1/ go to `web` (the release page) when given."""
    router = Router()

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    @router.route("GET", "/v1/status")
    def status(request: Request) -> Response:
        directory = node.directory()
        jobs = mesh_jobs(node, None)
        counts = [len(j["copies"]) for j in jobs.values()]
        states = [str(j.get("state", "held")) for j in jobs.values()]
        members = []
        for record in directory.nodes.values():
            held = sum(1 for j in jobs.values() if record.id in j["copies"])
            seen = node.peers.last_seen(record.id)
            members.append(
                {
                    "id": record.id,
                    "name": record.name,
                    "role": record.role,
                    "address": f"{record.host}:{record.peer_port}" if record.reachable else None,
                    "live": node.peers.is_live(record.id),
                    "last_seen": time.time() if record.id == node.id else seen,
                    "controller": record.id == directory.controller_id,
                    "jobs": held if node.peers.is_live(record.id) else None,
                    "disk": _disk(node) if record.id == node.id else None,
                }
            )
        polled = monitor.known(node.db)
        printers = [
            {**p.public(), **polled.get(name, {"ready": None, "reason": "not checked"})}
            for name, p in registry.printers(directory.doc).items()
        ]
        return json_response(
            {
                "site": directory.name,
                "printers": printers,
                "node": node.id,
                "directory_version": directory.version,
                "settings": directory.settings.describe(),
                "members": members,
                "jobs": {
                    "held": len(jobs),
                    "fully_replicated": sum(1 for c in counts if c >= COPIES),
                    "under_replicated": sum(1 for c in counts if c < COPIES),
                    "by_copies": {str(n): counts.count(n) for n in sorted(set(counts))},
                    "by_state": {s: states.count(s) for s in sorted(set(states))},
                },
            }
        )

    @router.route("GET", "/v1/jobs")
    def jobs(request: Request) -> Response:
        user, password = basic_credentials(request)
        release.authenticate(node, user, password)
        items = sorted(mesh_jobs(node, user).values(), key=lambda j: j["created_at"])
        for item in items:
            item.pop("holders_version", None)
        return json_response({"jobs": items})

    def find_delivery(release_id: str) -> dict[str, Any] | None:
        """A delivery made by this node or, failing that, by a live peer."""
        found = node.deliveries.get(release_id)
        if found is not None:
            return found.to_dict()
        for peer in node.peers.live():
            if peer.id != node.id:
                with contextlib.suppress(MeshprintError):
                    return dict(node.peers.client(peer.id).release_status(release_id))
        return None

    def repeated(data: dict[str, Any], job_id: str, everywhere: bool = False) -> Response | None:
        """A release already made here (or, `everywhere`, by a live peer): the job may be
        printed and gone."""
        release_id = data.get("release_id") or (
            release.command_release_id(data) if "command" in data else None
        )
        if not data.get("printer") or not release_id:
            return None
        release_id = deliver.check_release_id(str(release_id))
        if everywhere:
            earlier = find_delivery(release_id)
        else:
            found = node.deliveries.get(release_id)
            earlier = found.to_dict() if found is not None else None
        if earlier is None:
            return None
        if earlier["job_id"] != job_id:
            raise Conflict(f"release {release_id} was for another job")
        return json_response(earlier, 202)

    @router.route("GET", "/v1/jobs/<job_id>")
    def job_show(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        user, password = basic_credentials(request)
        release.authenticate(node, user, password)
        job = mesh_jobs(node, user).get(job_id)
        if job is None:
            raise NotFound(f"you have no job {job_id} (printed and deleted jobs are gone)")
        job.pop("holders_version", None)
        deliveries = [d.to_dict() for d in node.deliveries.for_job(job_id)]
        for peer in node.peers.live():
            if peer.id != node.id:
                with contextlib.suppress(MeshprintError):
                    deliveries += node.peers.client(peer.id).deliveries(job_id)
        job["deliveries"] = sorted(deliveries, key=lambda d: d["updated_at"])
        return json_response(job)

    @router.route("POST", "/v1/jobs/<job_id>/release")
    def release_job(request: Request) -> Response:
        """To a printer when the body names one (202 + the delivery), else the document."""
        job_id = check_job_id(request.params["job_id"])
        data = request.json()
        try:
            return release_here(request, job_id, data)
        except (NotFound, Conflict):
            # Gone or claimed: perhaps by this very release, retried here after another
            # node took it. Asking the peers only now keeps the usual path short.
            earlier = repeated(data, job_id, everywhere=True)
            if earlier is not None:
                return earlier
            raise

    def release_here(request: Request, job_id: str, data: dict[str, Any]) -> Response:
        opener: dict[str, Any]  # what opens the job, should another node deliver it
        if request.headers.get("Authorization"):
            user, password = basic_credentials(request)
            private = release.authenticate(node, user, password)
            earlier = repeated(data, job_id)
            if earlier is not None:
                return earlier
            meta = release.find_job(node, job_id, owner=user)
            user_share = release.open_user_share(private, job_id, meta)
            opener = {"x": USER_X, "share": b64(user_share)}

            def open_plaintext() -> release.Plaintext:
                return release.release_with_share(node, job_id, USER_X, user_share, meta)
        else:
            meta = None
            opener = {"command": data}

            def open_plaintext() -> release.Plaintext:
                return release.release_authorized(node, data, job_id)

        if not data.get("printer"):
            return stream_plaintext(open_plaintext(), finish=True)
        earlier = repeated(data, job_id)
        if earlier is not None:
            return earlier
        meta = meta or release.find_job(node, job_id, owner=None)
        release_id = deliver.check_release_id(
            data.get("release_id") or release.command_release_id(data)
        )
        options = deliver.print_options(data, meta)  # checked here, before any forwarding
        printer = str(data["printer"])
        target = deliver.queue_node(node, printer)
        if target is not None:
            forwarded = {
                **{key: data[key] for key in ("copies", "sides", "mono") if key in data},
                "printer": printer,
                "release_id": release_id,
                "reprint": bool(data.get("reprint")),
                "opener": opener,
            }
            return json_response(deliver.forward(node, target, job_id, forwarded), 202)
        delivery = deliver.deliver(
            node,
            job_id,
            meta["holders"],
            printer,
            options,
            release_id,
            bool(data.get("reprint")),
            open_plaintext,
        )
        return json_response(delivery.to_dict(), 202)

    @router.route("GET", "/v1/releases/<release_id>")
    def release_status(request: Request) -> Response:
        """Where a release to a printer is: queued, printing, printed, failed or unknown."""
        release_id = deliver.check_release_id(request.params["release_id"])
        found = find_delivery(release_id)
        if found is None:
            raise NotFound(f"no release {release_id}")
        return json_response(found)

    @router.route("DELETE", "/v1/jobs/<job_id>")
    def delete(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        user, password = basic_credentials(request)
        release.authenticate(node, user, password)
        meta = release.find_job(node, job_id, owner=user)
        node.delete_everywhere(job_id, "deleted by owner", meta["holders"])
        return json_response({"deleted": job_id})

    if web is None:
        return router.dispatch

    def dispatch(request: Request) -> Response:
        return router.dispatch(request) if request.path.startswith("/v1/") else web(request)

    return dispatch
