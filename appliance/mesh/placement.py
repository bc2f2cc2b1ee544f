"""Where a job's copies go: three distinct live nodes, super nodes first, then distinct
machines, then rendezvous hashing on (job, node) so jobs spread evenly and every node
computes the same order. And where its key shares go: each holder's share is at its
member point (`NodeRecord.point`, fixed for life), so whatever repair does, a node only
ever gets the one share of a job that is at its point; the owner has USER_X.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from appliance.site.directory import NodeRecord
from appliance.store.jobs import Holder

COPIES = 3
USER_X = 255  # Shamir point of the user's share; holders use their member points


def _score(job_id: str, node_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{job_id}/{node_id}".encode()).digest()[:8], "big")


def choose_holders(
    job_id: str,
    first: NodeRecord,
    candidates: Iterable[NodeRecord],
    count: int = COPIES,
    room: Mapping[str, int] | None = None,
    needed: int = 0,
) -> list[NodeRecord]:
    """`first` (the node that has the document) plus up to count-1 of `candidates`,
    passing over those whose `room` (the bytes each last said it may take; a node that
    did not say is not passed over) is used up or under the `needed` bytes."""
    said = room or {}

    def fits(n: NodeRecord) -> bool:
        left = said.get(n.id)
        return left is None or (left > 0 and left >= needed)

    chosen = [first]
    pool = sorted(
        (n for n in candidates if n.id != first.id and fits(n)),
        key=lambda n: -_score(job_id, n.id),
    )
    while pool and len(chosen) < count:
        machines = {n.machine_id for n in chosen}
        pool.sort(key=lambda n: (n.role != "super", n.machine_id in machines))
        chosen.append(pool.pop(0))
    return chosen


def share_points(chosen: list[NodeRecord]) -> list[Holder]:
    """The chosen holders at their member points (at 1, 2, 3 in order while one of them
    has no point yet: a site from before member points, until its controller starts)."""
    pointed = [Holder(n.id, n.point) for n in chosen if n.point is not None]
    if len(pointed) == len(chosen):
        return pointed
    return [Holder(n.id, x) for x, n in enumerate(chosen, start=1)]


def point_for(record: NodeRecord, holders: list[Holder]) -> int | None:
    """The share point a node takes a job's copy at: the point it is listed at when it is
    on the job's list already (a copy it lost: the same share again), else its member
    point unless another holder has that point (a job from before member points); None
    when it cannot take the job."""
    listed = next((h.x for h in holders if h.node == record.id), None)
    if listed is not None:
        return listed
    if record.point is None or any(h.x == record.point for h in holders):
        return None
    return record.point
