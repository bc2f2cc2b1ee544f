"""Where a job's copies go: three distinct live nodes, super nodes first, then distinct
machines, then rendezvous hashing on (job, node) so jobs spread evenly and every node
computes the same order. And where its key shares go: each holder has its own Shamir
point (1, 2, 3, …; repair adds more), the owner has USER_X.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from appliance.site.directory import NodeRecord

COPIES = 3
USER_X = 255  # Shamir point of the user's share; holders use 1, 2, 3, … (repair adds more)


def _score(job_id: str, node_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{job_id}/{node_id}".encode()).digest()[:8], "big")


def choose_holders(
    job_id: str, first: NodeRecord, candidates: Iterable[NodeRecord], count: int = COPIES
) -> list[NodeRecord]:
    """`first` (the node that has the document) plus up to count-1 of `candidates`."""
    chosen = [first]
    pool = sorted(
        (n for n in candidates if n.id != first.id),
        key=lambda n: -_score(job_id, n.id),
    )
    while pool and len(chosen) < count:
        machines = {n.machine_id for n in chosen}
        pool.sort(key=lambda n: (n.role != "super", n.machine_id in machines))
        chosen.append(pool.pop(0))
    return chosen
