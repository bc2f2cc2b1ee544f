"""Anti-entropy: every tick each node tells each peer which jobs it holds and which
directory version it has. The peer answers with tombstones for any of those jobs, newer
holder lists, and its own directory version; the older side then fetches or pushes the
directory. So a node that was off catches up with deletions, repairs and membership
from whichever peer it reaches first. Each call doubles as a liveness heartbeat.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from appliance.crypto.userkeys import unb64
from appliance.errors import Forbidden, MeshprintError
from appliance.mesh.context import MeshContext
from appliance.store.jobs import holders_from_list, holders_to_list

log = logging.getLogger(__name__)


def run(node: MeshContext) -> None:
    directory = node.directory()
    held = {job.id: job.holders_version for job in node.store.all()}
    request = {"directory_version": directory.version, "held": held}
    for peer in node.peers.others():
        if not peer.reachable:
            continue
        try:
            answer = node.peers.client(peer.id, timeout=3).sync(request)
        except Forbidden:
            _introduce(node, peer.id)
            continue
        except MeshprintError as err:
            log.debug("sync with %s failed: %s", peer.id, err)
            continue
        node.last_sync[peer.id] = {
            "at": time.time(),
            "jobs": answer.get("jobs", 0),
            "disk_free": answer.get("disk_free"),
        }
        apply(node, peer.id, answer)


def _introduce(node: MeshContext, peer_id: str) -> None:
    """A peer that refuses us as a member may not know of us yet (a restored
    controller): offer it our directory, which it adopts if the site authority signed it
    and it is newer."""
    try:
        node.peers.client(peer_id, timeout=3).offer_directory(node.directory().signed())
    except MeshprintError as err:
        log.debug("%s refused our directory: %s", peer_id, err)


def answer(node: MeshContext, request: dict[str, Any]) -> dict[str, Any]:
    """What a peer that sent `request` needs to know (run on the called node)."""
    held: dict[str, int] = request.get("held") or {}
    tombstoned = node.store.tombstoned(held)
    mine = {job.id: job for job in node.store.all()}  # one query, not one per held job
    holders = {
        job_id: {"holders": holders_to_list(job.holders), "version": job.holders_version}
        for job_id, version in held.items()
        if job_id not in tombstoned
        and (job := mine.get(job_id)) is not None
        and job.holders_version > int(version)
    }
    return {
        "directory_version": node.directory().version,
        "tombstoned": tombstoned,
        "holders": holders,
        "jobs": len(mine),
        "disk_free": shutil.disk_usage(node.store.jobs).free,
    }


def apply(node: MeshContext, peer_id: str, answer: dict[str, Any]) -> None:
    for job_id, reason in answer.get("tombstoned", {}).items():
        log.info("job %s was %s elsewhere: deleting it here", job_id, reason)
        node.store.delete(job_id, reason)
    for job_id, change in answer.get("holders", {}).items():
        holders = holders_from_list(change["holders"])
        if node.id not in {h.node for h in holders}:
            log.info(
                "job %s is now held by %s: dropping this copy",
                job_id,
                ", ".join(h.node for h in holders),
            )
            node.store.drop(job_id)
        else:
            node.store.set_holders(job_id, holders, int(change["version"]))
    ours = node.directory().version
    theirs = int(answer.get("directory_version", 0))
    if theirs > ours:
        doc = node.peers.client(peer_id).directory()
        if node.site.adopt(unb64(doc["raw"]), unb64(doc["signature"])):
            log.info("directory version %d from %s", theirs, peer_id)
    elif ours > theirs:
        node.peers.client(peer_id).offer_directory(node.directory().signed())
