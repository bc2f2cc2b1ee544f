"""The mesh's status document: the site's members, its printers with their last polled
status, and counts of the held jobs (never their contents). The release API answers it at
`GET /v1/status`; the admin console shows it, or, when the node does not answer, the same
document built from the site directory alone (`live=None`: nothing known of peers or jobs).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import MeshprintError
from appliance.mesh.context import MeshContext
from appliance.mesh.peers import LIVE_WINDOW, Peers
from appliance.mesh.placement import COPIES
from appliance.printers import registry
from appliance.site.directory import Directory
from appliance.store import printer_status
from appliance.store.db import Database
from appliance.store.states import JobState

NOT_CHECKED = {"ready": None, "reason": "not checked"}


def mesh_jobs(node: MeshContext, owner: str | None) -> dict[str, dict[str, Any]]:
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


def disk(root: Path) -> dict[str, int]:
    """Free and total bytes of the file system holding `root`."""
    usage = shutil.disk_usage(root)
    return {"free": usage.free, "total": usage.total}


@dataclass(frozen=True)
class Live:
    """What only the running node knows: who is up, the mesh's jobs, its own disk."""

    node_id: str
    peers: Peers
    jobs: Mapping[str, Mapping[str, Any]]  # `mesh_jobs`
    disk: dict[str, int]


def status_document(
    directory: Directory,
    polled: Mapping[str, Mapping[str, Any]],
    live: Live | None = None,
) -> dict[str, Any]:
    """The status of the site in `directory`, with printer status `polled`
    (`printer_status.known`); without `live`, members' state and jobs are unknown (None)."""
    jobs = live.jobs if live else {}
    counts = [len(j["copies"]) for j in jobs.values()]
    states = [str(j.get("state", JobState.HELD)) for j in jobs.values()]
    members = []
    for record in directory.nodes.values():
        up: bool | None = None
        seen: float | None = None
        here = live is not None and record.id == live.node_id
        if live is not None:
            up = live.peers.is_live(record.id)
            seen = time.time() if here else live.peers.last_seen(record.id)
        members.append(
            {
                "id": record.id,
                "name": record.name,
                "role": record.role,
                "address": f"{record.host}:{record.peer_port}" if record.reachable else None,
                "live": up,
                "last_seen": seen,
                "controller": record.id == directory.controller_id,
                "jobs": sum(1 for j in jobs.values() if record.id in j["copies"]) if up else None,
                "disk": live.disk if live is not None and here else None,
            }
        )
    printers = [
        {**p.public(), **polled.get(name, NOT_CHECKED)}
        for name, p in registry.printers(directory.doc).items()
    ]
    return {
        "site": directory.name,
        "printers": printers,
        "node": live.node_id if live else None,
        "directory_version": directory.version,
        "settings": directory.settings.describe(),
        "at": time.time(),
        "live_window": LIVE_WINDOW,  # "up": heard from within this many seconds
        "members": members,
        "jobs": {
            "held": len(jobs),
            "fully_replicated": sum(1 for c in counts if c >= COPIES),
            "under_replicated": sum(1 for c in counts if c < COPIES),
            "by_copies": {str(n): counts.count(n) for n in sorted(set(counts))},
            "by_state": {s: states.count(s) for s in sorted(set(states))},
        },
    }


def mesh_status(node: MeshContext, db: Database, data_root: Path) -> dict[str, Any]:
    """The status document as this running node sees the mesh (`db` has the printer
    status it polled; `data_root` is where it keeps its jobs)."""
    directory = node.directory()
    live = Live(node.id, node.peers, mesh_jobs(node, None), disk(data_root))
    return status_document(directory, printer_status.known(db), live)
