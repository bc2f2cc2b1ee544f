"""Repair: bring every job back to three copies.

A holder that has been gone longer than the grace period (or was removed from the site)
is replaced. The live holder with the smallest node id coordinates, so two nodes never
repair the same job at once. It asks a second live holder for its share, derives a
share for the new holder at a fresh Shamir point (the key itself is never formed, and
nothing is written but the new holder's own share), streams the sealed document there,
and publishes the new holder list. With fewer than two live holders a job cannot be
repaired; it stays releasable by its owner and is reported as under-replicated.
"""

from __future__ import annotations

import logging

from appliance.crypto import shamir
from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Forbidden, MeshprintError
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import change_holders
from appliance.mesh.placement import COPIES, USER_X, choose_holders
from appliance.mesh.replicate import encode_meta
from appliance.store.jobs import Holder, Job

log = logging.getLogger(__name__)


def gone_holders(node: MeshContext, job: Job) -> list[Holder]:
    """Holders that count as lost: removed from the site, or away past the grace period."""
    directory = node.directory()
    grace = directory.settings.repair_grace
    members = directory.nodes
    return [
        h
        for h in job.holders
        if h.node != node.id and (h.node not in members or node.peers.gone_for(h.node) > grace)
    ]


def run(node: MeshContext) -> None:
    for job in node.store.all():
        try:
            repair_job(node, job)
        except MeshprintError as err:
            log.info("job %s: repair postponed: %s", job.id, err)


def repair_job(node: MeshContext, job: Job) -> bool:
    gone = gone_holders(node, job)
    keep = [h for h in job.holders if h not in gone]
    if len(keep) >= COPIES:
        return False
    live = [h for h in keep if node.peers.is_live(h.node)]
    if len(live) < 2 or min(h.node for h in live) != node.id:
        return False
    taken = {h.node for h in job.holders}
    candidates = [n for n in node.peers.live() if n.id not in taken and n.reachable]
    me = node.directory().node(node.id)
    if not candidates or me is None:
        return False
    new = choose_holders(job.id, me, candidates, count=2)[1]
    other = next(h for h in live if h.node != node.id)
    answer = node.peers.client(other.node).repair_share(
        job.id,
        {
            "gone": [h.node for h in gone],
            "new": new.id,
            "holders_version": job.holders_version,
        },
    )
    new_x = max(h.x for h in job.holders) + 1
    if new_x >= USER_X:
        raise MeshprintError("no Shamir points left for this job")
    share = shamir.derive({job.share_x: job.share, int(answer["x"]): unb64(answer["share"])}, new_x)
    holders = [*keep, Holder(new.id, new_x)]
    meta = job.replica_meta(holders, job.holders_version + 1, new_x, share)
    with node.store.open_sealed(job.id) as sealed:
        node.peers.client(new.id, timeout=120).put_replica(
            job.id, encode_meta(meta), iter(lambda: sealed.read(256 * 1024), b""), job.sealed_size
        )
    change_holders(node, job.id, holders)
    log.info(
        "job %s: copy rebuilt on %s (replacing %s)",
        job.id,
        new.id,
        ", ".join(h.node for h in gone) or "a missing copy",
    )
    return True


def share_for_repair(
    node: MeshContext, job: Job, caller: str, request: dict[str, object]
) -> dict[str, object]:
    """Run on the second holder: hand over our share only for a repair we agree with."""
    holders = {h.node for h in job.holders}
    if caller not in holders:
        raise Forbidden(f"node {caller} does not hold job {job.id}")
    if request.get("holders_version") != job.holders_version:
        raise Forbidden("holder lists differ; sync first")
    gone = request.get("gone") or []
    if not isinstance(gone, list) or not all(isinstance(n, str) for n in gone):
        raise BadRequest("a repair request names the gone holders as a list of node ids")
    claimed = set(gone)
    agreed = {h.node for h in gone_holders(node, job)}
    if not claimed <= agreed:
        raise Forbidden(f"this node does not agree that {sorted(claimed - agreed)} are gone")
    if len(job.holders) - len(claimed) >= COPIES:
        raise Forbidden("the job has enough copies")
    if request.get("new") in holders:
        raise Forbidden("the new holder already holds the job")
    return {"x": job.share_x, "share": b64(job.share)}
