"""Changes to a job that involve all of its holders: deleting it everywhere, and a new
holder list. A holder that is off learns of either when it next syncs (a tombstone, or
the higher holders version).

Membership is not permission. A holder list changes here only by a decision the sender
cannot forge alone (`adopt_holders`): it must be a current holder, and every holder it
removes must be one this node itself sees as lost (gone by its own liveness view, no
longer a member, or answering that it has no copy), every holder it adds must replace
one and hold the copy under that very list. A job is deleted (`delete_from`) only at the
word of a current holder, the node delivering it, a member this node released it to, the
owner (who proves their key), or this node's own clock (expiry).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from appliance.crypto.userkeys import b64, open_sealed, seal, unb64
from appliance.errors import BadRequest, Forbidden, MeshprintError, NotFound, Unauthorized
from appliance.mesh.context import MeshContext
from appliance.mesh.peers import LIVE_WINDOW
from appliance.mesh.placement import COPIES, USER_X
from appliance.store.jobs import Holder, Job, check_job_id, holders_from_list, holders_to_list

log = logging.getLogger(__name__)
OWNER_DELETE = "deleted by owner"
SERVED_TTL = 600.0  # how long a member this node released a job to may delete it
CHALLENGE_TTL = 60.0

_lock = threading.Lock()
_served: dict[tuple[str, str], tuple[str, float]] = {}  # (node, job) -> (member, when)
_challenges: dict[tuple[str, str, str], tuple[bytes, float]] = {}  # (node, job, member)


# Who is lost, as this node sees it


def gone_holders(mesh: MeshContext, job: Job) -> list[Holder]:
    """Holders that count as lost: removed from the site, or away past the grace period."""
    directory = mesh.directory()
    grace = directory.settings.repair_grace
    members = directory.nodes
    return [
        h
        for h in job.holders
        if h.node != mesh.id and (h.node not in members or mesh.peers.gone_for(h.node) > grace)
    ]


def reported_missing(mesh: MeshContext, job: Job) -> list[Holder]:
    """Live holders whose last sync answer said they have no copy of the job (an upload
    lost at ingest, a disk replaced): they count as missing, like gone ones. Only for a
    job older than the grace period, so a copy still on its way is not mistaken."""
    now = time.time()
    if now - job.created_at <= mesh.directory().settings.repair_grace:
        return []
    missing = []
    for h in job.holders:
        seen = mesh.last_sync.get(h.node)
        if h.node == mesh.id or seen is None or not mesh.peers.is_live(h.node):
            continue
        if now - float(seen.get("at", 0)) < 2 * LIVE_WINDOW and job.id in seen.get("missing", ()):
            missing.append(h)
    return missing


def lacks_copy(mesh: MeshContext, node_id: str, job_id: str) -> bool:
    """Asked directly: the member answers that it holds no copy of the job."""
    if node_id == mesh.id:
        return mesh.store.get(job_id) is None
    try:
        mesh.peers.client(node_id, timeout=5).job(job_id)
    except NotFound:
        return True
    except MeshprintError:
        return False
    return False


def holds_with(mesh: MeshContext, node_id: str, job_id: str, holders: list[Holder]) -> bool:
    """Asked directly: the member holds a copy of the job under exactly `holders`."""
    try:
        info = mesh.peers.client(node_id, timeout=5).job(job_id)
        return set(holders_from_list(info["holders_x"])) == set(holders)
    except (MeshprintError, KeyError, ValueError, TypeError):
        return False


def is_lost(mesh: MeshContext, job: Job, holder: Holder, new: list[Holder]) -> bool:
    """Whether this node itself sees `holder` as rightly off the list `new`."""
    if holder in gone_holders(mesh, job):
        return True
    if holder.node in {h.node for h in new} and holds_with(mesh, holder.node, job.id, new):
        return True  # re-added at a fresh point by a repair
    return lacks_copy(mesh, holder.node, job.id)


# New holder lists


def change_holders(mesh: MeshContext, job_id: str, holders: list[Holder]) -> None:
    """Adopt a new holder list here and tell the live holders (old and new), each of
    which checks it for itself (`adopt_holders`)."""
    job = mesh.store.require(job_id)
    version = job.holders_version + 1
    mesh.store.set_holders(job_id, holders, version)
    for node_id in {h.node for h in holders} | {h.node for h in job.holders}:
        if node_id == mesh.id or not mesh.peers.is_live(node_id):
            continue
        try:
            mesh.peers.client(node_id).set_holders(job_id, holders_to_list(holders), version)
        except MeshprintError as err:
            log.info("job %s: %s will learn its holders on sync (%s)", job_id, node_id, err)


def parse_holders(holders: Any, version: Any) -> tuple[list[Holder], int]:
    try:
        new, number = holders_from_list(holders), int(version)
    except (ValueError, TypeError):
        raise BadRequest("a holder list is [[node id, share point], …] with a version") from None
    nodes, points = [h.node for h in new], [h.x for h in new]
    if len(set(nodes)) != len(nodes) or len(set(points)) != len(points):
        raise BadRequest("a holder list names each node and share point once")
    if not new or len(new) > COPIES or not all(1 <= x < USER_X for x in points):
        raise BadRequest(f"a holder list has 1 to {COPIES} holders at points 1..{USER_X - 1}")
    return new, number


def adopt_holders(mesh: MeshContext, job_id: str, sender: str, holders: Any, version: Any) -> bool:
    """A holder list member `sender` sent (pushed by its `change_holders`, or in a sync
    answer): adopted when justified, our copy dropped when we are no longer on it.
    Forbidden when the change is not one this node can agree with; False when it is not
    newer than ours (nothing to do)."""
    check_job_id(job_id)
    new, number = parse_holders(holders, version)
    job = mesh.store.require(job_id)
    if sender not in {h.node for h in job.holders}:
        raise Forbidden(f"node {sender} does not hold job {job_id}: it cannot change its holders")
    if number <= job.holders_version:
        return False
    if sender not in {h.node for h in new}:
        raise Forbidden("a holder list comes from a holder that stays on it")
    if mesh.id not in {h.node for h in new}:
        # A surplus copy: we were replaced while away. A current holder could delete the
        # job outright, so dropping our copy at its word gives it nothing more.
        log.info("job %s is now held by %s: dropping this copy", job_id, [h.node for h in new])
        mesh.store.drop(job_id)
        return True
    mine = next(h for h in new if h.node == mesh.id)
    if mine.x != job.share_x:
        raise Forbidden("a holder list cannot move this node's share point")
    removed = [h for h in job.holders if h not in new]
    added = [h for h in new if h not in job.holders]
    if len(added) > len(removed):
        raise Forbidden("a new holder may only replace a lost one")
    members = mesh.directory().nodes
    if any(h.node not in members for h in added):
        raise Forbidden("a new holder must be a site member")
    refused = [h.node for h in removed if not is_lost(mesh, job, h, new)]
    if refused:
        raise Forbidden(f"this node does not see {sorted(refused)} as lost")
    unproven = [h.node for h in added if not holds_with(mesh, h.node, job_id, new)]
    if unproven:
        raise Forbidden(f"{sorted(unproven)} hold no copy under this holder list")
    return mesh.store.set_holders(job_id, new, number)


# Deleting


def served_to(mesh: MeshContext, job_id: str, member: str) -> None:
    """Remember that this node decrypted the job for, or handed it to, `member` for a
    release: that member may then delete it (after delivering)."""
    with _lock:
        _served[(mesh.id, job_id)] = (member, time.time())


def _was_served(mesh: MeshContext, job_id: str, member: str) -> bool:
    with _lock:
        entry = _served.get((mesh.id, job_id))
    return entry is not None and entry[0] == member and time.time() - entry[1] < SERVED_TTL


def _challenge_context(job_id: str, member: str) -> bytes:
    return f"meshprint delete {job_id} by {member}".encode()


def delete_challenge(mesh: MeshContext, job_id: str, member: str) -> bytes:
    """A random value sealed to the job's owner: a member that opens it (with the key the
    owner's password unwrapped) proves the owner asked to delete the job."""
    job = mesh.store.require(job_id)
    user = mesh.directory().user(job.owner)
    if user is None:
        raise NotFound(f"the owner of job {job_id} is no longer a user")
    nonce = secrets.token_bytes(32)
    with _lock:
        _challenges[(mesh.id, job_id, member)] = (nonce, time.time())
    return seal(unb64(user.public_key), nonce, _challenge_context(job_id, member))


def _owner_proved(mesh: MeshContext, job_id: str, member: str, proof: Any) -> bool:
    with _lock:
        entry = _challenges.pop((mesh.id, job_id, member), None)
    if entry is None or not isinstance(proof, str) or time.time() - entry[1] > CHALLENGE_TTL:
        return False
    try:
        return secrets.compare_digest(unb64(proof), entry[0])
    except ValueError:
        return False


def may_delete(mesh: MeshContext, job: Job, member: str) -> bool:
    """Whether `member`'s word alone deletes our copy: a current holder's, the node
    delivering the job (its claim), a member we released it to, or expiry by our clock."""
    return (
        member in {h.node for h in job.holders}
        or member == job.delivery_node
        or _was_served(mesh, job.id, member)
        or job.expires_at <= time.time()
    )


def delete_from(
    mesh: MeshContext, job_id: str, member: str, reason: str, proof: Any = None
) -> bool:
    """A delete member `member` asks for (peer API). True when this node held the job."""
    check_job_id(job_id)
    # Nothing held: no tombstone (one from a member we cannot check would keep a repair
    # from ever bringing the job here), but the word is kept in mind for a while, and a
    # copy arriving after it (a job's third copy follows its answer) is refused when its
    # holder list names `member`; else the holders' tombstones reach it at the next sync.
    job = mesh.store.get_or_hear_delete(job_id, member, reason)
    if job is None:
        return False
    owner_asked = reason == OWNER_DELETE and _owner_proved(mesh, job_id, member, proof)
    if not (owner_asked or may_delete(mesh, job, member)):
        raise Forbidden(f"node {member} may not delete job {job_id}")
    if member in {h.node for h in job.holders}:
        return mesh.store.delete(job_id, reason)
    # A member that holds no copy (the node a release was served to, the owner's
    # delete through it) cannot delete the other holders' copies with its word alone; a
    # holder's word can: at once, not at their next sync with us (meanwhile a copy there
    # could be released a second time).
    delete_everywhere(mesh, job_id, reason)
    return True


def accept_tombstone(mesh: MeshContext, job_id: str, member: str, reason: str) -> None:
    """A tombstone a peer's sync answer names for a job we hold."""
    job = mesh.store.get(job_id)
    if job is not None and not may_delete(mesh, job, member):
        log.debug("job %s: tombstone from %s ignored (not a holder)", job_id, member)
        return
    log.info("job %s was %s elsewhere: deleting it here", job_id, reason)
    mesh.store.delete(job_id, reason)


def delete_everywhere(
    mesh: MeshContext,
    job_id: str,
    reason: str,
    holders: list[str] | None = None,
    owner_key: X25519PrivateKey | None = None,
) -> None:
    """Delete here (with a tombstone) and tell every live holder. `owner_key` (the
    owner's unwrapped key) answers a holder's challenge when we hold no copy."""
    job = mesh.store.get(job_id)
    targets = set(holders or []) | ({h.node for h in job.holders} if job else set())
    mesh.store.delete(job_id, reason)
    for node_id in targets - {mesh.id}:
        if not mesh.peers.is_live(node_id):
            continue
        try:
            client = mesh.peers.client(node_id, timeout=5)
            try:
                client.delete(job_id, reason)
            except Forbidden:
                if owner_key is None:
                    raise
                sealed = client.delete_challenge(job_id)
                nonce = open_sealed(owner_key, sealed, _challenge_context(job_id, mesh.id))
                client.delete(job_id, reason, proof=b64(nonce))
        except (MeshprintError, Unauthorized) as err:
            log.info("job %s: %s will delete it when it syncs (%s)", job_id, node_id, err)


def expire(mesh: MeshContext, now: float) -> None:
    """Delete the jobs past their retention everywhere; forget old tombstones."""
    for job_id in mesh.store.expired(now):
        log.info("job %s expired", job_id)
        delete_everywhere(mesh, job_id, "expired")
    mesh.store.prune_tombstones(now)
