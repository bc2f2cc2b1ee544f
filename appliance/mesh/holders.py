"""Changes to a job that involve all of its holders: deleting it everywhere, and a new
holder list. A holder that is off learns of either when it next syncs (a tombstone, or
the higher holders version)."""

from __future__ import annotations

import logging
from typing import Any

from appliance.errors import BadRequest, MeshprintError
from appliance.mesh.context import MeshContext
from appliance.store.jobs import Holder, check_job_id, holders_from_list, holders_to_list

log = logging.getLogger(__name__)


def delete_everywhere(
    mesh: MeshContext, job_id: str, reason: str, holders: list[str] | None = None
) -> None:
    """Delete here (with a tombstone) and tell every live holder."""
    job = mesh.store.get(job_id)
    targets = set(holders or []) | ({h.node for h in job.holders} if job else set())
    mesh.store.delete(job_id, reason)
    for node_id in targets - {mesh.id}:
        if not mesh.peers.is_live(node_id):
            continue
        try:
            mesh.peers.client(node_id, timeout=5).delete(job_id, reason)
        except MeshprintError as err:
            log.info("job %s: %s will delete it when it syncs (%s)", job_id, node_id, err)


def expire(mesh: MeshContext, now: float) -> None:
    """Delete the jobs past their retention everywhere; forget old tombstones."""
    for job_id in mesh.store.expired(now):
        log.info("job %s expired", job_id)
        delete_everywhere(mesh, job_id, "expired")
    mesh.store.prune_tombstones(now)


def change_holders(mesh: MeshContext, job_id: str, holders: list[Holder]) -> None:
    """Adopt a new holder list here and tell the live holders (old and new)."""
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


def adopt_holders(mesh: MeshContext, job_id: str, holders: Any, version: Any) -> None:
    """A holder list a member sent (`change_holders` there): kept, or our copy dropped
    when we are no longer on it."""
    check_job_id(job_id)
    try:
        new = holders_from_list(holders)
        version = int(version)
    except (ValueError, TypeError):
        raise BadRequest("a holder list is [[node id, share point], …] with a version") from None
    if mesh.id not in {h.node for h in new}:
        mesh.store.drop(job_id)
    else:
        mesh.store.set_holders(job_id, new, version)
