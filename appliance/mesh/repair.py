"""Repair: bring every job back to three copies, without any node holding two shares.

A holder that has been gone longer than the grace period (or was removed from the site),
or that is up but says it has no copy (`holders.reported_missing`), is replaced. The live
holder with the smallest node id coordinates (C), so two nodes never repair the same job
at once; a second live holder (H2) helps. Masked resharing (`appliance.crypto.shamir`):

1. C picks the new holder N and a random mask, and registers the repair with H2
   (`register`). N's share is at N's own member point (`placement.point_for`: the point
   it is listed at if it lost its copy), so N only ever gets the one share of the job
   that is its own. H2 checks it agrees: C is a holder, the holder lists match, every
   holder C calls lost is lost by H2's own observation, N holds no copy, N's point.
2. C streams the sealed document to N with its own masked part of N's share.
3. N pulls H2's masked part straight from H2 with its own certificate (`part_for`: only
   the registered N gets it, once), sums the two parts into its share and keeps the job.
4. C publishes the new holder list; each holder checks it for itself.

The mask hides each part from everyone but N, and the parts never meet anywhere but at
N: C never sees H2's share or part, N gets one share (its own). With fewer than two live
holders a job cannot be repaired; it stays releasable by its owner and is reported as
under-replicated.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from appliance.crypto import shamir
from appliance.crypto.userkeys import b64, unb64
from appliance.errors import BadRequest, Forbidden, MeshprintError, Unavailable
from appliance.mesh.budget import peer_room
from appliance.mesh.context import MeshContext
from appliance.mesh.holders import change_holders, gone_holders, is_lost, reported_missing
from appliance.mesh.placement import COPIES, choose_holders, point_for
from appliance.mesh.replicate import encode_meta
from appliance.site import release_authority
from appliance.site.directory import NodeRecord
from appliance.store.jobs import Holder, Job

log = logging.getLogger(__name__)
REGISTRATION_TTL = 600.0  # the new holder pulls once the whole copy has arrived
REPAIR_FIELD = "repair"  # in a repair replica's metadata: {"from": H2's node id}


@dataclass(frozen=True)
class Registration:
    """A repair H2 agreed to: who coordinates, who receives, at which point, the mask."""

    coordinator: Holder
    new: str
    new_x: int
    mask: bytes
    version: int
    at: float


_lock = threading.Lock()
_registered: dict[tuple[str, str], Registration] = {}  # (H2's node id, job id)


def lost_holders(node: MeshContext, job: Job) -> list[Holder]:
    """The holders to replace: gone, or up without a copy."""
    gone = gone_holders(node, job)
    return gone + [h for h in reported_missing(node, job) if h not in gone]


def may_take(node: MeshContext, record: NodeRecord, job: Job) -> bool:
    """Whether `record` may receive a copy of `job` in a repair: it holds it already (it
    lost its copy: the same share again), it was a member in this node's own view before
    the job came, or the release authority vouched for it (a restored controller). So a
    member that the CA key alone adds (a stolen controller's) never gets a share of a job
    that was held before it, whatever holder it replaces."""
    if record.id in {h.node for h in job.holders}:
        return True
    if node.site.member_since(record.id) <= job.created_at:
        return True
    return release_authority.is_vouched(
        node.directory().doc, node.directory().doc["nodes"][record.id]
    )


def run(node: MeshContext) -> None:
    for job in node.store.all():
        try:
            repair_job(node, job)
        except MeshprintError as err:
            log.info("job %s: repair postponed: %s", job.id, err)


def repair_job(node: MeshContext, job: Job) -> bool:
    lost = lost_holders(node, job)
    keep = [h for h in job.holders if h not in lost]
    if len(keep) >= COPIES:
        return False
    live = [h for h in keep if node.peers.is_live(h.node)]
    if len(live) < 2 or min(h.node for h in live) != node.id:
        return False
    kept = {h.node for h in keep}
    listed = {h.node for h in job.holders}
    candidates = [
        n
        for n in node.peers.live()
        if n.id not in kept
        and n.reachable
        and point_for(n, job.holders) is not None
        and may_take(node, n, job)
    ]
    # Prefer a node not on the list; a listed one without a copy may take it back (at
    # its own point: the share it had).
    candidates = [n for n in candidates if n.id not in listed] or candidates
    me = node.directory().node(node.id)
    if not candidates or me is None:
        return False
    chosen = choose_holders(
        job.id, me, candidates, count=2, room=peer_room(node), needed=job.sealed_size
    )
    if len(chosen) < 2:
        return False  # every candidate is full
    new = chosen[1]
    other = next(h for h in live if h.node != node.id)
    new_x = point_for(new, job.holders)
    assert new_x is not None
    mask = shamir.new_mask(len(job.share))
    node.peers.client(other.node).register_repair(
        job.id,
        {
            "gone": [h.node for h in lost],
            "new": new.id,
            "new_x": new_x,
            "holders_version": job.holders_version,
            "mask": b64(mask),
        },
    )
    mine = shamir.part(job.share_x, job.share, (job.share_x, other.x), new_x)
    holders = [*keep, Holder(new.id, new_x)]
    meta = job.replica_meta(holders, job.holders_version + 1, new_x, shamir.masked(mine, mask))
    meta[REPAIR_FIELD] = {"from": other.node}
    with node.store.open_sealed(job.id) as sealed:
        node.peers.client(new.id, timeout=120).put_replica(
            job.id, encode_meta(meta), iter(lambda: sealed.read(256 * 1024), b""), job.sealed_size
        )
    change_holders(node, job.id, holders)
    log.info(
        "job %s: copy rebuilt on %s (replacing %s)",
        job.id,
        new.id,
        ", ".join(h.node for h in lost),
    )
    return True


# On H2


def register(node: MeshContext, job: Job, caller: str, request: dict[str, Any]) -> None:
    """Agree to a repair coordinated by `caller`, or refuse it (Forbidden)."""
    coordinator = next((h for h in job.holders if h.node == caller), None)
    if coordinator is None:
        raise Forbidden(f"node {caller} does not hold job {job.id}")
    if request.get("holders_version") != job.holders_version:
        raise Forbidden("holder lists differ; sync first")
    gone, new, new_x = request.get("gone"), request.get("new"), request.get("new_x")
    if not isinstance(gone, list) or not all(isinstance(n, str) for n in gone):
        raise BadRequest("a repair request names the lost holders as a list of node ids")
    if not isinstance(new, str) or not isinstance(new_x, int):
        raise BadRequest("a repair request names the new holder and its share point")
    try:
        mask = unb64(str(request.get("mask")))
    except ValueError:
        raise BadRequest("a repair request carries its mask") from None
    if len(mask) != len(job.share):
        raise BadRequest("the mask must be as long as a share")
    lost = [h for h in job.holders if h.node in set(gone)]
    if len(lost) != len(set(gone)):
        raise Forbidden("a repair may only replace holders of the job")
    if caller in gone or node.id in gone:
        raise Forbidden("a repair cannot replace the holders doing it")
    keep = [h for h in job.holders if h not in lost]
    if len(keep) >= COPIES:
        raise Forbidden("the job has enough copies")
    record = node.directory().node(new)
    if new in {h.node for h in keep} or record is None:
        raise Forbidden("the new holder must be a member that holds no copy")
    if new_x != point_for(record, job.holders):
        # Anything else could give a node a second share of this job.
        raise Forbidden("the new holder takes its copy at its own member point only")
    if not may_take(node, record, job):
        raise Forbidden(
            f"node {new} became a member after job {job.id} came: it may not take a copy"
        )
    future = [*keep, Holder(new, new_x)]
    disputed = [h.node for h in lost if not is_lost(node, job, h, future)]
    if disputed:
        raise Forbidden(f"this node does not agree that {sorted(disputed)} are lost")
    with _lock:
        _registered[(node.id, job.id)] = Registration(
            coordinator, new, new_x, mask, job.holders_version, time.time()
        )


def part_for(node: MeshContext, job: Job, caller: str) -> dict[str, Any]:
    """Our masked part of the new holder's share, for the new holder of a repair we
    registered, once."""
    with _lock:
        reg = _registered.get((node.id, job.id))
        if reg is None or time.time() - reg.at > REGISTRATION_TTL:
            raise Forbidden(f"no repair of job {job.id} is registered here")
        if reg.new != caller:
            raise Forbidden(f"node {caller} is not the new holder of this repair")
        if reg.version != job.holders_version:
            raise Forbidden("the holder list changed since the repair was registered")
        del _registered[(node.id, job.id)]
    points = (reg.coordinator.x, job.share_x)
    mine = shamir.part(job.share_x, job.share, points, reg.new_x)
    return {"x": reg.new_x, "part": b64(shamir.masked(mine, reg.mask))}


# On N


def finish_replica(node: MeshContext, job: Job, meta: dict[str, Any]) -> None:
    """For a repair replica: pull H2's masked part and sum it with C's into our share
    (nothing to do for an ordinary replica)."""
    repair = meta.get(REPAIR_FIELD)
    if repair is None:
        return
    helper = repair.get("from") if isinstance(repair, dict) else None
    if not isinstance(helper, str) or helper == node.id:
        raise BadRequest("a repair replica names the holder that helps")
    if helper not in {h.node for h in job.holders}:
        raise Forbidden("the helping holder is not on the job's holder list")
    answer = node.peers.client(helper).repair_share(job.id)
    try:
        x, theirs = int(answer["x"]), unb64(str(answer["part"]))
    except (KeyError, ValueError, TypeError):
        raise Unavailable("the helping holder answered without its part") from None
    if x != job.share_x or len(theirs) != len(job.share):
        raise Forbidden("the helping holder's part is for another share point")
    job.share = shamir.sum_parts([job.share, theirs])
