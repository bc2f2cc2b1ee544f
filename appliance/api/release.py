"""The local release API (port 9266, HTTPS): owners list, release and delete their jobs;
anyone may read the mesh's health. Works with only this node and one holder up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appliance.api.auth import basic_credentials
from appliance.api.http import Request, Response, Router, json_response
from appliance.api.peer import stream_plaintext
from appliance.errors import MeshprintError
from appliance.jobs import release
from appliance.mesh.placement import COPIES
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
    query = f"?owner={owner}" if owner else ""
    for peer in node.peers.live():
        if peer.id == node.id:
            continue
        try:
            sources.append((peer.id, node.peers.call(peer.id, "GET", f"/peer/jobs{query}")["jobs"]))
        except MeshprintError:
            continue
    for source, items in sources:
        for item in items:
            known = jobs.get(item["id"])
            if known is None or item["holders_version"] > known["holders_version"]:
                jobs[item["id"]] = {**item, "copies": (known or {}).get("copies", [])}
            jobs[item["id"]]["copies"] = sorted({*jobs[item["id"]]["copies"], source})
    return jobs


def app(node: Node) -> Callable[[Request], Response]:
    router = Router()

    @router.route("GET", "/v1/health")
    def health(request: Request) -> Response:
        return json_response({"ok": True, "node": node.id})

    @router.route("GET", "/v1/status")
    def status(request: Request) -> Response:
        directory = node.directory()
        jobs = mesh_jobs(node, None)
        counts = [len(j["copies"]) for j in jobs.values()]
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
                }
            )
        return json_response(
            {
                "site": directory.name,
                "node": node.id,
                "directory_version": directory.version,
                "settings": directory.settings.describe(),
                "members": members,
                "jobs": {
                    "held": len(jobs),
                    "fully_replicated": sum(1 for c in counts if c >= COPIES),
                    "under_replicated": sum(1 for c in counts if c < COPIES),
                    "by_copies": {str(n): counts.count(n) for n in sorted(set(counts))},
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

    @router.route("POST", "/v1/jobs/<job_id>/release")
    def release_job(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        if request.headers.get("Authorization"):
            user, password = basic_credentials(request)
            plaintext = release.release_for_user(node, user, password, job_id)
        else:
            plaintext = release.release_authorized(node, request.json(), job_id)
        return stream_plaintext(plaintext, finish=True)

    @router.route("DELETE", "/v1/jobs/<job_id>")
    def delete(request: Request) -> Response:
        job_id = check_job_id(request.params["job_id"])
        user, password = basic_credentials(request)
        release.authenticate(node, user, password)
        meta = release.find_job(node, job_id, owner=user)
        node.delete_everywhere(job_id, "deleted by owner", meta["holders"])
        return json_response({"deleted": job_id})

    return router.dispatch
