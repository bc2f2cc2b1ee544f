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
from appliance.mesh.holders import accept_tombstone, adopt_holders
from appliance.store.jobs import JOB_ID_RE, holders_to_list

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
            "missing": set(answer.get("missing") or ()),
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
    # Jobs the peer holds that we neither hold, nor deleted, nor are receiving: if we are
    # one of their holders, our copy is missing (repair counts it as lost).
    missing = [
        job_id
        for job_id in held
        if JOB_ID_RE.fullmatch(job_id)
        and job_id not in mine
        and job_id not in tombstoned
        and not any(node.store.incoming.glob(f"{job_id}.*.part"))
    ]
    return {
        "directory_version": node.directory().version,
        "tombstoned": tombstoned,
        "holders": holders,
        "missing": missing,
        "jobs": len(mine),
        "disk_free": shutil.disk_usage(node.store.jobs).free,
    }


def apply(node: MeshContext, peer_id: str, answer: dict[str, Any]) -> None:
    for job_id, reason in answer.get("tombstoned", {}).items():
        accept_tombstone(node, job_id, peer_id, str(reason))
    for job_id, change in answer.get("holders", {}).items():
        try:
            adopt_holders(node, job_id, peer_id, change.get("holders"), change.get("version"))
        except MeshprintError as err:
            log.debug("job %s: holder list from %s not adopted: %s", job_id, peer_id, err)
    ours = node.directory().version
    theirs = int(answer.get("directory_version", 0))
    if theirs > ours:
        doc = node.peers.client(peer_id).directory()
        if node.site.adopt(unb64(doc["raw"]), unb64(doc["signature"])):
            log.info("directory version %d from %s", theirs, peer_id)
    elif ours > theirs:
        node.peers.client(peer_id).offer_directory(node.directory().signed())
