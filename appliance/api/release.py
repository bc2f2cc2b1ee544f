"""The local release API (port 9266, HTTPS): owners list, release and delete their jobs;
anyone may read the mesh's health. Works with only this node and one holder up.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.api.plaintext import stream_plaintext
from appliance.errors import MeshprintError, NotFound
from appliance.https.auth import basic_credentials
from appliance.https.server import Request, Response, Router, json_response
from appliance.jobs import deliver, release, releases
from appliance.jobs.release import Plaintext
from appliance.mesh.placement import COPIES
from appliance.printers import registry
from appliance.store import printer_status
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
        polled = printer_status.known(node.db)
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

    @router.route("GET", "/v1/jobs/<job_id>")
    def job_show(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        user, password = basic_credentials(request)
        release.authenticate(node, user, password)
        job = mesh_jobs(node, user).get(job_id)
        if job is None:
            raise NotFound(f"you have no job {job_id} (printed and deleted jobs are gone)")
        job.pop("holders_version", None)
        return json_response({**job, "deliveries": releases.deliveries_of(node, job_id)})

    @router.route("POST", "/v1/jobs/<job_id>/release")
    def release_job(request: Request) -> Response:
        """To a printer when the body names one (202 + the delivery), else the document."""
        credentials = basic_credentials(request) if request.headers.get("Authorization") else None
        job_id = request.params["job_id"]
        outcome = releases.release_job(node, job_id, request.json(), credentials)
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
        releases.delete_job(node, job_id, basic_credentials(request))
        return json_response({"deleted": job_id})

    if web is None:
        return router.dispatch

    def dispatch(request: Request) -> Response:
        return router.dispatch(request) if request.path.startswith("/v1/") else web(request)

    return dispatch
